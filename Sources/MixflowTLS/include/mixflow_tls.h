/* Private helpers of the C-API layer (never exported: the version script keeps only mixflow_*). */
#ifndef MIXFLOW_TLS_H
#define MIXFLOW_TLS_H
#include <stddef.h>

/* The calling thread's last-error buffer (C11 _Thread_local). */
void mfx_set_error(const char *message, size_t length);
void mfx_clear_error(void);
const char *mfx_get_error(void);

#endif
