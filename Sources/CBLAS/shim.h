#include <cblas.h>
#include <stddef.h>

/* ---- data and evaluation: LAPACK from OpenBLAS (no lapacke header is installed) ----
 * dsyev_: eigenvalues (and vectors with jobz = 'V') of a symmetric matrix, column-major.
 * The trailing size_t arguments are gfortran's hidden lengths of the two character arguments. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);
