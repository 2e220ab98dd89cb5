// Tests of MilterServer.open() rejecting invalid configurations. Each case fails in
// validation, before anything is registered with libmilter, so it can run inside the test
// process: libmilter allows only one registered milter per process.
import Milter
import XCTest

final class MilterServerTests: XCTestCase {
    private func openError(_ configure: (inout MilterConfiguration) -> Void) -> MilterError? {
        var configuration = MilterConfiguration(name: "test", listen: "unix:/nonexistent/milter.sock")
        configure(&configuration)
        let server = MilterServer(configuration: configuration, log: { _, _ in }, makeSession: { PassiveSession() })
        do {
            try server.open()
            return nil
        } catch {
            return error as? MilterError
        }
    }

    func testOpenRejectsInvalidConfigurations() {
        let cases: [(String, (inout MilterConfiguration) -> Void)] = [
            ("empty name", { $0.name = "" }),
            ("macros at body", { $0.macros[.body] = ["i"] }),
            ("macros at header", { $0.macros[.header] = ["i"] }),
            ("zero timeout", { $0.timeoutSeconds = 0 }),
            ("end of message without reply", { $0.noReplyStages = [.endOfMessage] }),
            ("no-reply stage not handled", { $0.stages = [.connect, .endOfMessage]; $0.noReplyStages = [.header] }),
        ]
        for (name, configure) in cases {
            let error = openError(configure)
            XCTAssertEqual(error?.operation, "configure milter", name)
        }
    }

    func testConfigurationDefaults() {
        let configuration = MilterConfiguration(name: "test", listen: "unix:/run/milter.sock")

        XCTAssertEqual(configuration.stages, Set(ProtocolStage.allCases))
        XCTAssertTrue(configuration.noReplyStages.isEmpty, "every stage gets a reply by default")
        XCTAssertEqual(configuration.timeoutSeconds, 300)
        XCTAssertEqual(configuration.backlog, 128)
        XCTAssertTrue(configuration.removeStaleSocket)
        XCTAssertNil(configuration.socketMode)
        XCTAssertEqual(configuration.failureReply, .tempfail)
    }
}

/// A session that uses every default of MilterSession.
private final class PassiveSession: MilterSession {}
