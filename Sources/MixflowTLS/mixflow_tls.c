/* Per-thread last-error message (libgit2 keeps its last error per thread the same way).
 * A fixed buffer: setting an error can never fail or allocate. Messages longer than the buffer are
 * truncated on a UTF-8 boundary. */
#include "mixflow_tls.h"
#include <string.h>

#define MFX_ERROR_CAPACITY 2048

static _Thread_local char mfx_error[MFX_ERROR_CAPACITY];

void mfx_set_error(const char *message, size_t length) {
    if (message == NULL) { mfx_error[0] = '\0'; return; }
    if (length >= MFX_ERROR_CAPACITY) {
        length = MFX_ERROR_CAPACITY - 1;
        /* do not cut a multi-byte UTF-8 sequence in half */
        while (length > 0 && ((unsigned char)message[length] & 0xC0) == 0x80) length--;
    }
    memcpy(mfx_error, message, length);
    mfx_error[length] = '\0';
}

void mfx_clear_error(void) { mfx_error[0] = '\0'; }

const char *mfx_get_error(void) { return mfx_error; }
