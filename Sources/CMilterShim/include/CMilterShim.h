// C helpers for the libmilter and syslog calls that Swift cannot make itself: both
// smfi_setmlreply and syslog are variadic, and Swift does not import variadic C functions.
// The helpers only forward their arguments; they must never keep a pointer after returning.
#ifndef EGRESS_CMILTERSHIM_H
#define EGRESS_CMILTERSHIM_H

// stdbool.h and sys/socket.h come before mfapi.h, which otherwise defines `bool` as int.
#include <stdbool.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <libmilter/mfapi.h>

/// The most text lines smfi_setmlreply accepts in one reply.
#define EGRESS_MAXIMUM_REPLY_LINES 32

/// Sets a multi-line SMTP reply: calls smfi_setmlreply with `count` lines (1...32) followed by
/// the NULL terminator. Returns MI_FAILURE without calling libmilter when `count` is out of range.
int egress_setmlreply(SMFICTX *ctx, const char *rcode, const char *xcode,
                      const char *const *lines, int count);

/// Logs `message` verbatim: calls syslog(priority, "%s", message), so a `%` in the message is
/// never read as a format directive.
void egress_syslog(int priority, const char *message);

/// Calls openlog(ident, option, facility). syslog keeps the `ident` pointer, so it must stay
/// valid until closelog or the end of the process.
void egress_openlog(const char *ident, int option, int facility);

#endif
