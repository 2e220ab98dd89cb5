// egressctl check-config [FILE]: validates a configuration file without a running daemon.
import EgressCore
import Foundation

let defaultConfigurationPath = "/etc/egress-milter/egress-milter.yaml"

func checkConfigurationCommand(_ arguments: [String]) -> Int32 {
    if arguments.contains("--help") || arguments.contains("-h") {
        print("""
            Usage: egressctl check-config [FILE]

            Validates FILE (default \(defaultConfigurationPath)) and its limits overrides table,
            then prints the effective settings. Exit status 0 when valid, 1 when not, 2 on a usage error.
            """)
        return 0
    }
    guard arguments.count <= 1, arguments.first.map({ !$0.hasPrefix("-") }) ?? true else {
        printToStandardError("egressctl check-config: expected at most one FILE; see egressctl check-config --help")
        return 2
    }
    let path = arguments.first ?? defaultConfigurationPath
    do {
        let configuration = try Configuration.load(contentsOf: path)
        var overrideCount = 0
        if !configuration.limitsOverrides.isEmpty {
            overrideCount = try LimitOverrides.load(contentsOf: configuration.limitsOverrides).entries.count
        }
        print("# configuration OK: \(path)")
        if !configuration.limitsOverrides.isEmpty {
            print("# limits overrides OK: \(configuration.limitsOverrides), \(overrideCount) keys")
        }
        print(configuration.summary(), terminator: "")
        return 0
    } catch {
        printToStandardError("egressctl: \(error)")
        return 1
    }
}
