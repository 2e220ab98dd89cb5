// The control socket's server: one thread accepts, and each connection gets a thread of its
// own that reads request lines and writes the handler's reply lines until the client closes.
//
// It must never slow or stop mail: it runs apart from libmilter's threads, takes at most
// `maximumConnections` clients at once (a further one gets an error line and is closed),
// and every read and write has ControlConnection's time limit. A failing accept is logged
// once a minute at most and retried, because a full descriptor table usually clears.

import EgressCore
import Foundation
import Synchronization

final class ControlServer: Sendable {
    /// Clients served at the same time.
    static let maximumConnections = 8
    /// How often the accept thread checks whether it should stop, in milliseconds.
    static let stopCheckMilliseconds: Int32 = 250

    private let listener: ControlListener
    private let handler: ControlHandler
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let activeConnections = Atomic<Int>(0)
    private let acceptLoopEnded = DispatchSemaphore(value: 0)

    init(listener: ControlListener, handler: ControlHandler, logger: Logger) {
        self.listener = listener
        self.handler = handler
        self.logger = logger
    }

    var path: String { listener.path }

    func start() {
        let thread = Thread { [self] in
            acceptLoop()
            acceptLoopEnded.signal()
        }
        thread.name = "control"
        thread.start()
    }

    /// Stops accepting, closes the socket and removes its file. Connections being served
    /// finish on their own threads. Calling it again does nothing.
    func stop() {
        guard !stopRequested.exchange(true, ordering: .relaxed) else { return }
        _ = acceptLoopEnded.wait(timeout: .now() + .milliseconds(Int(Self.stopCheckMilliseconds) * 4))
        listener.close()
    }

    private func acceptLoop() {
        var lastFailureLog: Date?
        while !stopRequested.load(ordering: .relaxed) {
            let connection: ControlConnection?
            do {
                connection = try listener.accept(timeoutMilliseconds: Self.stopCheckMilliseconds)
            } catch {
                if lastFailureLog.map({ Date().timeIntervalSince($0) >= 60 }) ?? true {
                    logger.error("control socket \(listener.path): \(error); retrying")
                    lastFailureLog = Date()
                }
                Thread.sleep(forTimeInterval: 1)
                continue
            }
            guard let connection else { continue }

            if activeConnections.add(1, ordering: .relaxed).newValue > Self.maximumConnections {
                activeConnections.subtract(1, ordering: .relaxed)
                try? connection.write(ControlHandler.errorLine("the daemon serves \(Self.maximumConnections) control connections at once; try again"))
                connection.close()
                logger.warning("control socket: refused a connection from \(connection.peer()?.description ?? "an unknown peer"), \(Self.maximumConnections) are open")
                continue
            }
            let thread = Thread { [self] in
                serve(connection)
                connection.close()
                activeConnections.subtract(1, ordering: .relaxed)
            }
            thread.name = "control-client"
            thread.start()
        }
    }

    /// Replies to request lines until the client closes the connection or breaks the protocol.
    private func serve(_ connection: ControlConnection) {
        let peer = connection.peer()
        while true {
            let line: [UInt8]?
            do {
                line = try connection.readLine(maximumBytes: ControlProtocol.maximumRequestBytes)
            } catch {
                logger.warning("control connection from \(peer?.description ?? "an unknown peer"): \(error); closing it")
                try? connection.write(ControlHandler.errorLine("\(error)"))
                return
            }
            guard let line else { return }
            do {
                try connection.write(handler.reply(to: line, from: peer))
            } catch {
                logger.debug("control connection from \(peer?.description ?? "an unknown peer"): \(error)")
                return
            }
        }
    }
}
