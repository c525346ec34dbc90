/* hiredis as Swift sees it: the argv forms only (redisCommand is variadic). */
#ifndef FOG_CHIREDIS_SHIM_H
#define FOG_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>

/* redisContext.errstr is a char[128], a tuple in Swift: hand out a pointer instead. */
static inline const char *chiredis_errstr(const redisContext *c) { return c->errstr; }
static inline int chiredis_err(const redisContext *c) { return c->err; }
static inline int chiredis_fd(const redisContext *c) { return c->fd; }
#endif
