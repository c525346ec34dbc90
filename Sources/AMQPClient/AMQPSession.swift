internal import CRabbitMQ
import Foundation

/// Owns one rabbitmq-c connection: opens the socket (TCP or TLS), logs in, opens channels,
/// performs the broker calls, reads frames, and destroys the connection exactly once.
/// Not thread-safe: only its event loop's thread touches it.
final class AMQPSession {
    /// Channel 1 publishes in confirm mode; channel 2 carries declares, gets and other RPCs;
    /// each consumer gets a channel of its own from 3 upwards.
    static let publishChannel: UInt16 = 1
    static let controlChannel: UInt16 = 2

    let endpoint: AMQPEndpoint
    private var state: amqp_connection_state_t?
    private var controlChannelOpen = false

    private init(state: amqp_connection_state_t, endpoint: AMQPEndpoint) {
        self.state = state
        self.endpoint = endpoint
    }

    deinit { destroy() }

    /// Closes the socket without a handshake and frees the C state.
    func destroy() {
        if let state { amqp_destroy_connection(state) }
        state = nil
    }

    /// Sends connection.close and waits briefly for close-ok, then frees the C state.
    func closeGracefully() {
        if let state { _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS) }
        destroy()
    }

    var fileDescriptor: Int32 { state.map { amqp_get_sockfd($0) } ?? -1 }

    /// True while rabbitmq-c holds frames or bytes it has read but not yet handed out.
    var hasBufferedInput: Bool {
        guard let state else { return false }
        return amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
    }

    // MARK: Opening

    static func open(_ endpoint: AMQPEndpoint, configuration: AMQPConfiguration) throws -> AMQPSession {
        guard let state = amqp_new_connection() else { throw AMQPError(.library, "cannot allocate a connection") }
        let session = AMQPSession(state: state, endpoint: endpoint)
        let arena = AMQPArena()
        let where_ = endpoint.displayName

        let socket: OpaquePointer?
        if let tls = endpoint.tls {
            socket = amqp_ssl_socket_new(state)
            guard let socket else { throw AMQPError(.connectionFailed, "\(where_): cannot create a TLS socket") }
            if let ca = tls.caCertificateFile, amqp_ssl_socket_set_cacert(socket, ca) != AMQP_STATUS_OK.rawValue {
                throw AMQPError(.connectionFailed, "\(where_): cannot load CA certificate '\(ca)'")
            }
            if let certificate = tls.certificateFile, let key = tls.keyFile,
                amqp_ssl_socket_set_key(socket, certificate, key) != AMQP_STATUS_OK.rawValue
            {
                throw AMQPError(.connectionFailed, "\(where_): cannot load client certificate '\(certificate)' / key '\(key)'")
            }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyPeer ? 1 : 0)
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else { throw AMQPError(.connectionFailed, "\(where_): cannot create a socket") }

        let connect = endpoint.connectTimeout.secondsAndMicroseconds
        var timeout = timeval(tv_sec: connect.seconds, tv_usec: connect.microseconds)
        let opened = amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &timeout)
        guard opened == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(.connectionFailed, "\(where_): cannot connect: \(Self.statusText(opened)); is a broker listening there?")
        }
        // Never inherited by a program this process starts (a fog node's attempts).
        let descriptor = amqp_get_sockfd(state)
        if descriptor >= 0 { _ = fcntl(descriptor, F_SETFD, fcntl(descriptor, F_GETFD) | FD_CLOEXEC) }
        let rpc = configuration.rpcTimeout.secondsAndMicroseconds
        var rpcTimeout = timeval(tv_sec: rpc.seconds, tv_usec: rpc.microseconds)
        _ = amqp_set_rpc_timeout(state, &rpcTimeout)
        _ = amqp_set_handshake_timeout(state, &timeout)

        var clientProperties = arena.table([
            "connection_name": .string(configuration.connectionName),
            "product": .string("FogScheduler AMQPClient"),
            "capabilities": .table([
                "authentication_failure_close": .bool(true),
                "publisher_confirms": .bool(true),
                "consumer_cancel_notify": .bool(true),
                "basic.nack": .bool(true),
                "connection.blocked": .bool(false),
            ]),
        ])
        let heartbeat = Int32(endpoint.heartbeat.components.seconds)
        let login = crmq_login_plain_with_properties(
            state, endpoint.vhost, 0, 131_072, heartbeat, &clientProperties, endpoint.user, endpoint.password)
        if let error = session.replyError(login, doing: "log in") {
            switch error.replyCode {
            case 403?:
                throw AMQPError(
                    .authenticationFailed, "\(where_): the broker refused user '\(endpoint.user)': \(error.message)", replyCode: 403)
            case 530?:
                throw AMQPError(
                    .authenticationFailed,
                    "\(where_): vhost '\(endpoint.vhost)' does not exist or is not allowed for user '\(endpoint.user)'", replyCode: 530)
            default:
                if error.code == .connectionLost {
                    throw AMQPError(
                        .authenticationFailed, "\(where_): the broker closed the connection during login (wrong user, password or vhost?)")
                }
                throw AMQPError(.connectionFailed, "\(where_): login failed: \(error.message)", replyCode: error.replyCode)
            }
        }
        try session.openChannel(publishChannel)
        try session.enableConfirms()
        return session
    }

    /// Puts the publish channel in confirm mode: every message then gets an ack or a nack.
    func enableConfirms() throws {
        let state = try requireState()
        _ = amqp_confirm_select(state, Self.publishChannel)
        if let error = replyError(amqp_get_rpc_reply(state), doing: "enable publisher confirms") { throw error }
    }

    func openChannel(_ channel: UInt16) throws {
        let state = try requireState()
        _ = amqp_channel_open(state, channel)
        if let error = replyError(amqp_get_rpc_reply(state), doing: "open channel \(channel)") { throw error }
    }

    /// Sends channel.close-ok after the broker closed a channel, so the number can be reused.
    func acknowledgeChannelClose(_ channel: UInt16) {
        guard let state else { return }
        var closeOK = amqp_channel_close_ok_t()
        _ = amqp_send_method(state, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &closeOK)
        if channel == Self.controlChannel { controlChannelOpen = false }
    }

    func closeChannel(_ channel: UInt16) {
        guard let state else { return }
        _ = amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS)
    }

    // MARK: Control-channel calls (declare, bind, purge, get)

    /// Runs one RPC on the control channel, reopening it first if an earlier error closed it.
    private func control<T>(_ what: String, _ call: (amqp_connection_state_t, UInt16) -> T?) throws -> T? {
        let state = try requireState()
        if !controlChannelOpen {
            try openChannel(Self.controlChannel)
            controlChannelOpen = true
        }
        let result = call(state, Self.controlChannel)
        if let error = replyError(amqp_get_rpc_reply(state), doing: what) {
            if error.code == .channelClosed { acknowledgeChannelClose(Self.controlChannel) }
            throw error
        }
        return result
    }

    func declareExchange(_ name: String, kind: ExchangeKind, durable: Bool, autoDelete: Bool, arguments: AMQPTable) throws {
        let arena = AMQPArena()
        _ = try control("declare exchange '\(name)'") { state, channel in
            amqp_exchange_declare(
                state, channel, arena.bytes(name), arena.bytes(kind.rawValue), 0,
                durable ? 1 : 0, autoDelete ? 1 : 0, 0, arena.table(arguments))
        }
    }

    func declareQueue(_ name: String, passive: Bool, durable: Bool, exclusive: Bool, autoDelete: Bool, arguments: AMQPTable) throws
        -> QueueInfo
    {
        let arena = AMQPArena()
        let ok = try control(passive ? "inspect queue '\(name)'" : "declare queue '\(name)'") { state, channel in
            amqp_queue_declare(
                state, channel, arena.bytes(name), passive ? 1 : 0, durable ? 1 : 0,
                exclusive ? 1 : 0, autoDelete ? 1 : 0, arena.table(arguments))
        }
        guard let ok else { throw AMQPError(.library, "queue.declare for '\(name)' returned no reply") }
        return QueueInfo(
            name: ok.pointee.queue.string, messageCount: Int(ok.pointee.message_count),
            consumerCount: Int(ok.pointee.consumer_count))
    }

    func bindQueue(_ queue: String, exchange: String, routingKey: String, arguments: AMQPTable) throws {
        let arena = AMQPArena()
        _ = try control("bind queue '\(queue)' to '\(exchange)'") { state, channel in
            amqp_queue_bind(state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table(arguments))
        }
    }

    func purgeQueue(_ name: String) throws -> Int {
        let arena = AMQPArena()
        let ok = try control("purge queue '\(name)'") { state, channel in amqp_queue_purge(state, channel, arena.bytes(name)) }
        return Int(ok?.pointee.message_count ?? 0)
    }

    func deleteQueue(_ name: String) throws -> Int {
        let arena = AMQPArena()
        let ok = try control("delete queue '\(name)'") { state, channel in amqp_queue_delete(state, channel, arena.bytes(name), 0, 0) }
        return Int(ok?.pointee.message_count ?? 0)
    }

    func deleteExchange(_ name: String) throws {
        let arena = AMQPArena()
        _ = try control("delete exchange '\(name)'") { state, channel in amqp_exchange_delete(state, channel, arena.bytes(name), 0) }
    }

    /// basic.get on the control channel: one message or nil when the queue is empty.
    func get(_ queue: String, generation: Int) throws -> AMQPDelivery? {
        let state = try requireState()
        if !controlChannelOpen {
            try openChannel(Self.controlChannel)
            controlChannelOpen = true
        }
        let arena = AMQPArena()
        let reply = amqp_basic_get(state, Self.controlChannel, arena.bytes(queue), 0)
        if let error = replyError(reply, doing: "get from '\(queue)'") {
            if error.code == .channelClosed { acknowledgeChannelClose(Self.controlChannel) }
            throw error
        }
        guard reply.reply.id == AMQP_BASIC_GET_OK_METHOD else { return nil }
        let ok = reply.reply.decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        let (body, properties) = try readContent(channel: Self.controlChannel)
        return AMQPDelivery(
            body: body, properties: properties, exchange: ok.exchange.string, routingKey: ok.routing_key.string,
            redelivered: ok.redelivered != 0, tag: ok.delivery_tag, channel: Self.controlChannel, generation: generation)
    }

    // MARK: Consumers

    func startConsumer(channel: UInt16, queue: String, tag: String, prefetch: UInt16, arguments: AMQPTable) throws {
        let state = try requireState()
        try openChannel(channel)
        let arena = AMQPArena()
        _ = amqp_basic_qos(state, channel, 0, prefetch, 0)
        var error = replyError(amqp_get_rpc_reply(state), doing: "set prefetch on '\(queue)'")
        if error == nil {
            _ = amqp_basic_consume(state, channel, arena.bytes(queue), arena.bytes(tag), 0, 0, 0, arena.table(arguments))
            error = replyError(amqp_get_rpc_reply(state), doing: "consume from '\(queue)'")
        }
        if let error {
            if error.code == .channelClosed { acknowledgeChannelClose(channel) }
            throw error
        }
    }

    func cancelConsumer(channel: UInt16, tag: String) {
        guard let state else { return }
        let arena = AMQPArena()
        _ = amqp_basic_cancel(state, channel, arena.bytes(tag))
        closeChannel(channel)
    }

    // MARK: Sending without waiting

    /// Sends basic.publish; the outcome arrives later as a confirm frame. Returns a status.
    func publish(_ message: OutgoingMessage) -> Int32 {
        guard let state else { return AMQP_STATUS_CONNECTION_CLOSED.rawValue }
        let arena = AMQPArena()
        var properties = arena.properties(message.properties)
        return amqp_basic_publish(
            state, Self.publishChannel, arena.bytes(message.exchange), arena.bytes(message.routingKey),
            message.mandatory ? 1 : 0, 0, &properties, arena.bytes(message.body))
    }

    enum Settlement {
        case ack(multiple: Bool)
        case nack(multiple: Bool, requeue: Bool)
        case reject(requeue: Bool)
    }

    func settle(channel: UInt16, tag: UInt64, _ settlement: Settlement) -> Int32 {
        guard let state else { return AMQP_STATUS_CONNECTION_CLOSED.rawValue }
        switch settlement {
        case .ack(let multiple): return amqp_basic_ack(state, channel, tag, multiple ? 1 : 0)
        case .nack(let multiple, let requeue): return amqp_basic_nack(state, channel, tag, multiple ? 1 : 0, requeue ? 1 : 0)
        case .reject(let requeue): return amqp_basic_reject(state, channel, tag, requeue ? 1 : 0)
        }
    }

    // MARK: Reading

    /// What arrived from the broker.
    enum Incoming {
        case delivery(consumerTag: String, AMQPDelivery)
        case confirm(tag: UInt64, multiple: Bool, ack: Bool)
        case returned(replyCode: Int, replyText: String, exchange: String, routingKey: String, body: [UInt8])
        case consumerCancelled(channel: UInt16, consumerTag: String)
        case channelClosed(channel: UInt16, AMQPError)
        /// A frame this client has no use for (a heartbeat, a stray reply).
        case nothing
        /// Nothing more to read right now.
        case idle
    }

    /// Reads one frame if one is ready, without blocking. Throws when the connection is gone.
    func poll(generation: Int) throws -> Incoming {
        let state = try requireState()
        var frame = amqp_frame_t()
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &zero)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return .idle }
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(.connectionLost, "\(endpoint.displayName): \(Self.statusText(status))")
        }
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return .nothing }
        let decoded = frame.payload.method.decoded!
        switch frame.payload.method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            let deliver = decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let consumerTag = deliver.consumer_tag.string
            let exchange = deliver.exchange.string
            let routingKey = deliver.routing_key.string
            let (body, properties) = try readContent(channel: frame.channel)
            return .delivery(
                consumerTag: consumerTag,
                AMQPDelivery(
                    body: body, properties: properties, exchange: exchange, routingKey: routingKey,
                    redelivered: deliver.redelivered != 0, tag: deliver.delivery_tag, channel: frame.channel, generation: generation))
        case AMQP_BASIC_ACK_METHOD:
            let ack = decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .confirm(tag: ack.delivery_tag, multiple: ack.multiple != 0, ack: true)
        case AMQP_BASIC_NACK_METHOD:
            let nack = decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .confirm(tag: nack.delivery_tag, multiple: nack.multiple != 0, ack: false)
        case AMQP_BASIC_RETURN_METHOD:
            let returned = decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let code = Int(returned.reply_code)
            let text = returned.reply_text.string
            let exchange = returned.exchange.string
            let routingKey = returned.routing_key.string
            let (body, _) = try readContent(channel: frame.channel)
            return .returned(replyCode: code, replyText: text, exchange: exchange, routingKey: routingKey, body: body)
        case AMQP_BASIC_CANCEL_METHOD:
            let cancel = decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            return .consumerCancelled(channel: frame.channel, consumerTag: cancel.consumer_tag.string)
        case AMQP_CHANNEL_CLOSE_METHOD:
            let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = Self.channelError(close, doing: "channel \(frame.channel)")
            acknowledgeChannelClose(frame.channel)
            return .channelClosed(channel: frame.channel, error)
        case AMQP_CONNECTION_CLOSE_METHOD:
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var closeOK = amqp_connection_close_ok_t()
            _ = amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &closeOK)
            throw AMQPError(
                .connectionLost, "\(endpoint.displayName): the broker closed the connection: \(close.reply_text.string)",
                replyCode: Int(close.reply_code))
        default:
            return .nothing
        }
    }

    /// Frees frames that were read and handed out; call after each batch of reads.
    func releaseBuffers() {
        if let state { amqp_maybe_release_buffers(state) }
    }

    private func readContent(channel: UInt16) throws -> ([UInt8], AMQPProperties) {
        let state = try requireState()
        var message = amqp_message_t()
        let reply = amqp_read_message(state, channel, &message, 0)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            throw replyError(reply, doing: "read a message") ?? AMQPError(.connectionLost, "cannot read a message")
        }
        defer { amqp_destroy_message(&message) }
        return (message.body.array, AMQPProperties(message.properties))
    }

    // MARK: Errors

    private func requireState() throws -> amqp_connection_state_t {
        guard let state else { throw AMQPError(.connectionLost, "\(endpoint.displayName): the connection is closed") }
        return state
    }

    /// Turns an RPC reply into an error, or nil when it was normal. A channel closed by the
    /// broker is acknowledged; a connection closed by it, or a library failure, is lost.
    func replyError(_ reply: amqp_rpc_reply_t, doing what: String) -> AMQPError? {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return nil
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let status = reply.library_error
            let code: AMQPError.Code = status == AMQP_STATUS_TIMEOUT.rawValue ? .timeout : .connectionLost
            return AMQPError(code, "\(endpoint.displayName): cannot \(what): \(Self.statusText(status))")
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                // The channel that failed is the one the RPC ran on; rabbitmq-c does not say which.
                let error = Self.channelError(close, doing: what)
                return error
            }
            if reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                if let state {
                    var closeOK = amqp_connection_close_ok_t()
                    _ = amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &closeOK)
                }
                return AMQPError(
                    .connectionLost, "cannot \(what): the broker closed the connection: \(close.reply_text.string)",
                    replyCode: Int(close.reply_code))
            }
            return AMQPError(.library, "cannot \(what): unexpected server method \(reply.reply.id)")
        default:
            return AMQPError(.library, "cannot \(what): no reply")
        }
    }

    private static func channelError(_ close: amqp_channel_close_t, doing what: String) -> AMQPError {
        AMQPError(.channelClosed, "cannot \(what): \(close.reply_text.string)", replyCode: Int(close.reply_code))
    }

    /// rabbitmq-c's text for a status; for socket errors, with the system's reason beside it
    /// ("a socket error occurred (Connection refused)").
    static func statusText(_ status: Int32) -> String {
        let text = String(cString: amqp_error_string2(status))
        let reason = errno
        guard status == AMQP_STATUS_SOCKET_ERROR.rawValue || status == AMQP_STATUS_TCP_ERROR.rawValue,
            reason != 0, reason != EINPROGRESS, reason != EAGAIN
        else { return text }
        return "\(text) (\(String(cString: strerror(reason))))"
    }
}
