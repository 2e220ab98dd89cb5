// C helper for libmicrohttpd's MHD_start_daemon, which Swift cannot call because it is
// variadic. It only forwards its arguments and keeps no pointer after returning; libmicrohttpd
// keeps `context` and calls `handler` with it until MHD_stop_daemon returns.
#ifndef EGRESS_CMICROHTTPDSHIM_H
#define EGRESS_CMICROHTTPDSHIM_H

#include <microhttpd.h>

/// Starts an HTTP server on `listenSocket`, a socket that is already bound and listening, with
/// one internal thread that polls every connection. `handler` replies to each request.
/// `connectionLimit` caps the connections open at once and `timeoutSeconds` closes idle ones.
/// Returns NULL when libmicrohttpd cannot start; MHD_stop_daemon stops it and closes the socket.
struct MHD_Daemon *egress_mhd_start(int listenSocket, MHD_AccessHandlerCallback handler, void *context,
                                    unsigned int connectionLimit, unsigned int timeoutSeconds);

#endif
