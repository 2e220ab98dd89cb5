// C helper for the variadic MHD_start_daemon. See include/CMicroHTTPDShim.h.
// It must never keep a pointer it was given; libmicrohttpd keeps `context` itself.
#include "CMicroHTTPDShim.h"

#include <stddef.h>

struct MHD_Daemon *egress_mhd_start(int listenSocket, MHD_AccessHandlerCallback handler, void *context,
                                    unsigned int connectionLimit, unsigned int timeoutSeconds)
{
    if (listenSocket < 0 || handler == NULL) {
        return NULL;
    }

    // The port argument is ignored when MHD_OPTION_LISTEN_SOCKET passes a bound socket.
    // Without MHD_USE_ERROR_LOG the library writes nothing to stderr; failures show as NULL.
    return MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD, 0, NULL, NULL, handler, context,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listenSocket,
                            MHD_OPTION_CONNECTION_LIMIT, connectionLimit,
                            MHD_OPTION_CONNECTION_TIMEOUT, timeoutSeconds,
                            MHD_OPTION_END);
}
