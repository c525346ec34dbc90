import Foundation
import Testing

@testable import FogNode

/// The fog node's sandbox parts that need no process: the output tail, the uid pool and its
/// checks, the environment's encoding for descriptor 3.
@Suite("Sandbox parts")
struct SandboxPartsTests {
    @Test("a tail keeps the last bytes of any amount of output, and says when it cut")
    func tail() {
        var tail = TailBuffer(limit: 8)
        tail.append(Array("abc".utf8)[...])
        #expect(tail.bytes == Array("abc".utf8) && !tail.truncated)
        tail.append(Array("defghij".utf8)[...])
        #expect(tail.bytes == Array("cdefghij".utf8) && tail.truncated)
        tail.append(Array(repeating: 0x78, count: 100_000)[...])
        #expect(tail.bytes.count == 8 && tail.truncated)
        var exact = TailBuffer(limit: 3)
        exact.append(Array("xyz".utf8)[...])
        #expect(!exact.truncated, "exactly the limit is all of it")
    }

    @Test("a uid pool hands each running attempt a uid of its own, and waits when all are taken")
    func pool() {
        var users = TaskUsers(mode: .pool(3_900_000_000...3_900_000_001))
        let first = users.take()
        let second = users.take()
        let third = users.take()
        #expect(first.available && second.available && !third.available)
        #expect(first.identity?.uid != second.identity?.uid)
        #expect(first.identity?.exclusive == true && first.identity?.gid == first.identity?.uid)
        users.giveBack(first.identity)
        #expect(users.take().identity?.uid == first.identity?.uid)
        var shared = TaskUsers(mode: .shared(uid: 65_534, gid: 65_534))
        #expect(shared.take().identity?.exclusive == false)
    }

    @Test("a uid range is refused when it holds root or a user or group of this host")
    func rangeChecks() {
        #expect(TaskUsers.problem(with: 0...10)?.contains("root") == true)
        #expect(TaskUsers.problem(with: 65_534...65_534) != nil, "nobody")
        #expect(TaskUsers.problem(with: 3_900_000_000...3_900_000_099) == nil)
    }

    @Test("the task's environment travels as NUL-ended entries")
    func environment() {
        let bytes = ExecShim.encodeEnvironment(["B": "2", "A": "x=y"])
        #expect(bytes == Array("A=x=y\u{0}B=2\u{0}".utf8))
    }
}
