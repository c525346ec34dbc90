internal import CRabbitMQ
import Foundation

/// C memory for one rabbitmq-c call: copies of strings, bodies and field tables that live
/// until the arena is released, so no `amqp_bytes_t` ever points into a temporary Swift value.
final class AMQPArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { for allocation in allocations { allocation.deallocate() } }

    /// A binary-safe copy of `bytes`.
    func bytes<C: Collection<UInt8>>(_ bytes: C) -> amqp_bytes_t {
        let count = bytes.count
        guard count > 0 else { return amqp_bytes_t(len: 0, bytes: nil) }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 1)
        allocations.append(memory)
        UnsafeMutableRawBufferPointer(start: memory, count: count).copyBytes(from: bytes)
        return amqp_bytes_t(len: count, bytes: memory)
    }

    func bytes(_ text: String) -> amqp_bytes_t { bytes(text.utf8) }

    /// A NUL-terminated copy, for the few calls that take `char *`.
    func cString(_ text: String) -> UnsafePointer<CChar> {
        let utf8 = Array(text.utf8CString)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: utf8.count, alignment: 1)
        allocations.append(memory)
        utf8.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: utf8.count) }
        return UnsafePointer(memory.assumingMemoryBound(to: CChar.self))
    }

    func table(_ table: AMQPTable) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_empty_table }
        let entries = allocate(amqp_table_entry_t.self, count: table.entries.count)
        for (index, entry) in table.entries.enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(entry.key), value: field(entry.value))
        }
        return amqp_table_t(num_entries: Int32(table.entries.count), entries: entries)
    }

    private func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let text):
            field.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            field.value.bytes = bytes(text)
        case .bytes(let data):
            field.kind = UInt8(AMQP_FIELD_KIND_BYTES.rawValue)
            field.value.bytes = bytes(data)
        case .int(let number):
            field.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            field.value.i64 = number
        case .bool(let flag):
            field.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            field.value.boolean = flag ? 1 : 0
        case .double(let number):
            field.kind = UInt8(AMQP_FIELD_KIND_F64.rawValue)
            field.value.f64 = number
        case .timestamp(let seconds):
            field.kind = UInt8(AMQP_FIELD_KIND_TIMESTAMP.rawValue)
            field.value.u64 = seconds
        case .table(let nested):
            field.kind = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
            field.value.table = table(nested)
        case .array(let values):
            field.kind = UInt8(AMQP_FIELD_KIND_ARRAY.rawValue)
            let entries = allocate(amqp_field_value_t.self, count: max(values.count, 1))
            for (index, element) in values.enumerated() { entries[index] = self.field(element) }
            field.value.array = amqp_array_t(num_entries: Int32(values.count), entries: entries)
        case .void:
            field.kind = UInt8(AMQP_FIELD_KIND_VOID.rawValue)
        }
        return field
    }

    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags = UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        c.delivery_mode = properties.persistent ? 2 : 1
        func set(_ value: String?, _ flag: Int32, _ assign: (amqp_bytes_t) -> Void) {
            guard let value else { return }
            assign(bytes(value))
            flags |= UInt32(flag)
        }
        set(properties.contentType, AMQP_BASIC_CONTENT_TYPE_FLAG) { c.content_type = $0 }
        set(properties.messageID, AMQP_BASIC_MESSAGE_ID_FLAG) { c.message_id = $0 }
        set(properties.correlationID, AMQP_BASIC_CORRELATION_ID_FLAG) { c.correlation_id = $0 }
        set(properties.type, AMQP_BASIC_TYPE_FLAG) { c.type = $0 }
        set(properties.appID, AMQP_BASIC_APP_ID_FLAG) { c.app_id = $0 }
        set(properties.replyTo, AMQP_BASIC_REPLY_TO_FLAG) { c.reply_to = $0 }
        set(properties.expiration, AMQP_BASIC_EXPIRATION_FLAG) { c.expiration = $0 }
        if let timestamp = properties.timestamp {
            c.timestamp = timestamp
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        if !properties.headers.isEmpty {
            c.headers = table(properties.headers)
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
        }
        c._flags = flags
        return c
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.stride * count, alignment: MemoryLayout<T>.alignment)
        allocations.append(memory)
        return memory.bindMemory(to: T.self, capacity: count)
    }
}

// MARK: Reading C values back into Swift

extension amqp_bytes_t {
    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }

    var string: String { String(decoding: array, as: UTF8.self) }
}

extension AMQPTable {
    init(_ c: amqp_table_t) {
        var entries: [(key: String, value: AMQPFieldValue)] = []
        for index in 0..<Int(max(c.num_entries, 0)) {
            let entry = c.entries[index]
            entries.append((entry.key.string, AMQPFieldValue(entry.value)))
        }
        self.init(entries)
    }
}

extension AMQPFieldValue {
    init(_ c: amqp_field_value_t) {
        switch UInt32(c.kind) {
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: self = .bool(c.value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: self = .int(Int64(c.value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: self = .int(Int64(c.value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: self = .int(Int64(c.value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: self = .int(Int64(c.value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: self = .int(Int64(c.value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: self = .int(Int64(c.value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: self = .int(c.value.i64)
        case AMQP_FIELD_KIND_U64.rawValue: self = .int(Int64(bitPattern: c.value.u64))
        case AMQP_FIELD_KIND_F32.rawValue: self = .double(Double(c.value.f32))
        case AMQP_FIELD_KIND_F64.rawValue: self = .double(c.value.f64)
        case AMQP_FIELD_KIND_UTF8.rawValue: self = .string(c.value.bytes.string)
        case AMQP_FIELD_KIND_BYTES.rawValue: self = .bytes(c.value.bytes.array)
        case AMQP_FIELD_KIND_TIMESTAMP.rawValue: self = .timestamp(c.value.u64)
        case AMQP_FIELD_KIND_TABLE.rawValue: self = .table(AMQPTable(c.value.table))
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            let array = c.value.array
            self = .array((0..<Int(max(array.num_entries, 0))).map { AMQPFieldValue(array.entries[$0]) })
        default: self = .void
        }
    }
}

extension AMQPProperties {
    init(_ c: amqp_basic_properties_t) {
        self.init()
        let flags = c._flags
        func has(_ flag: Int32) -> Bool { flags & UInt32(flag) != 0 }
        if has(AMQP_BASIC_CONTENT_TYPE_FLAG) { contentType = c.content_type.string }
        persistent = has(AMQP_BASIC_DELIVERY_MODE_FLAG) && c.delivery_mode == 2
        if has(AMQP_BASIC_HEADERS_FLAG) { headers = AMQPTable(c.headers) }
        if has(AMQP_BASIC_MESSAGE_ID_FLAG) { messageID = c.message_id.string }
        if has(AMQP_BASIC_CORRELATION_ID_FLAG) { correlationID = c.correlation_id.string }
        if has(AMQP_BASIC_TYPE_FLAG) { type = c.type.string }
        if has(AMQP_BASIC_APP_ID_FLAG) { appID = c.app_id.string }
        if has(AMQP_BASIC_REPLY_TO_FLAG) { replyTo = c.reply_to.string }
        if has(AMQP_BASIC_EXPIRATION_FLAG) { expiration = c.expiration.string }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) { timestamp = c.timestamp }
    }
}
