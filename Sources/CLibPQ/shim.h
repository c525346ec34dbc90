/* libpq as Swift sees it. Debian installs the header under postgresql/. */
#ifndef FOG_CLIBPQ_SHIM_H
#define FOG_CLIBPQ_SHIM_H
#include <postgresql/libpq-fe.h>
#endif
