// libmicrohttpd's API header. On Linux it includes the system headers it needs itself.
#include <microhttpd.h>
