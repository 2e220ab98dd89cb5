// C helpers for variadic calls (smfi_setmlreply, syslog). See include/CMilterShim.h.
// They must never keep a pointer they were given, except the ident that openlog requires.
#include "CMilterShim.h"

#include <stddef.h>
#include <syslog.h>

int egress_setmlreply(SMFICTX *ctx, const char *rcode, const char *xcode,
                      const char *const *lines, int count)
{
    if (lines == NULL || count < 1 || count > EGRESS_MAXIMUM_REPLY_LINES) {
        return MI_FAILURE;
    }

    // smfi_setmlreply reads arguments until the first NULL, so pad the unused slots with NULL.
    const char *slot[EGRESS_MAXIMUM_REPLY_LINES + 1] = { NULL };
    for (int index = 0; index < count; index++) {
        if (lines[index] == NULL) {
            return MI_FAILURE;
        }
        slot[index] = lines[index];
    }

    return smfi_setmlreply(ctx, rcode, xcode,
        slot[0], slot[1], slot[2], slot[3], slot[4], slot[5], slot[6], slot[7],
        slot[8], slot[9], slot[10], slot[11], slot[12], slot[13], slot[14], slot[15],
        slot[16], slot[17], slot[18], slot[19], slot[20], slot[21], slot[22], slot[23],
        slot[24], slot[25], slot[26], slot[27], slot[28], slot[29], slot[30], slot[31],
        slot[32]);
}

void egress_syslog(int priority, const char *message)
{
    syslog(priority, "%s", message == NULL ? "" : message);
}

void egress_openlog(const char *ident, int option, int facility)
{
    openlog(ident, option, facility);
}
