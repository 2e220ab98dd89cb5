// PCRE2 with 8-bit code units: the width must be chosen before the header is included.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
