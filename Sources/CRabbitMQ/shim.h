/* rabbitmq-c as Swift sees it. Debian bookworm ships 0.11, whose headers are flat;
 * 0.12+ moved them to <rabbitmq-c/amqp.h>, so prefer that when present. */
#ifndef FOG_CRABBITMQ_SHIM_H
#define FOG_CRABBITMQ_SHIM_H
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#endif

/* amqp_login is variadic, which Swift cannot call: PLAIN login with fixed arguments. */
static inline amqp_rpc_reply_t crmq_login_plain(amqp_connection_state_t state, const char *vhost,
                                                int channel_max, int frame_max, int heartbeat,
                                                const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat,
                      AMQP_SASL_METHOD_PLAIN, user, password);
}

/* amqp_login_with_properties is variadic too: the same, with client properties
 * (connection_name, capabilities) that the broker shows in its connection list. */
static inline amqp_rpc_reply_t crmq_login_plain_with_properties(
        amqp_connection_state_t state, const char *vhost, int channel_max, int frame_max,
        int heartbeat, const amqp_table_t *properties, const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

/* The decoded payload of a method frame, typed, so Swift need not cast void pointers. */
static inline void *crmq_method_decoded(const amqp_frame_t *frame) {
    return frame->payload.method.decoded;
}
#endif
