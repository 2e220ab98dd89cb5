// libmilter's API header. stdbool.h and sys/socket.h come first: without them mfapi.h
// defines its own `bool` as int and lacks struct sockaddr.
#include <stdbool.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <libmilter/mfapi.h>
