import ClientSupport
import Foundation
import Synchronization
import Testing

@Suite struct BlockingWorkerTests {
    @Test func runsJobsInOrderOffTheCooperativePool() async throws {
        let worker = BlockingWorker(name: "test-worker")
        defer { worker.shutdown() }
        let order = Mutex<[Int]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                // Submitted one after another: the worker must keep that order.
                worker.submit { order.withLock { $0.append(index) } }
            }
            group.addTask {
                #expect(!worker.isCurrentThread)
                let onWorker = try await worker.run { worker.isCurrentThread }
                #expect(onWorker)
            }
            try await group.waitForAll()
        }
        let seen = try await worker.run { order.withLock { $0 } }
        #expect(seen == Array(0..<50))
    }

    @Test func propagatesErrors() async {
        struct Boom: Error {}
        let worker = BlockingWorker(name: "test-errors")
        defer { worker.shutdown() }
        await #expect(throws: Boom.self) { try await worker.run { throw Boom() } }
    }

    @Test func refusesWorkAfterShutdown() async {
        let worker = BlockingWorker(name: "test-shutdown")
        worker.shutdown()
        await #expect(throws: BlockingWorker.Stopped.self) { try await worker.run { 1 } }
    }
}
