/* System zlib (Debian zlib1g-dev), used only to inflate .gz IDX files. */
#include <zlib.h>
