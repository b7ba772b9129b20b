/* System zlib (Debian zlib1g-dev): inflates .gz IDX files, deflates PNG grids. */
#include <zlib.h>
