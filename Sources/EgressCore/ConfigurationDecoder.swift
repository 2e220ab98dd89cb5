// Turns the YAML tree of a config file into a `Configuration`, strictly. An unknown or
// duplicate key, a value of the wrong type or an invalid value stops decoding with a
// `ConfigurationError`. The error has that node's line and column and its dotted key path.
// Keys the file leaves out keep their built-in defaults.
//
// It must never guess: there is no type coercion beyond what YAML itself defines, and a
// setting it does not understand is an error, not a warning.

/// The keys a config file may use, by mapping. The order is the order of `summary()` and of
/// the suggestions in error messages.
enum ConfigurationKeys {
    static let top = ["listen", "socket", "user", "state_directory", "timeout", "fail_action",
                      "log_level", "paths", "identity", "headers", "replies", "senders", "limits_overrides", "limits",
                      "control", "scoring", "notifications", "metrics"]
    static let socket = ["mode", "group"]
    static let control = ["socket", "mode", "group"]
    static let paths = ["local_daemon_names"]
    static let headers = ["status"]
    static let replies = ["tempfail", "reject"]
    static let reply = ["code", "status", "text"]
    static let senderRule = ["match", "action", "reason", "scoring"]
    static let limitRule = ["name", "level", "messages", "recipients", "max_recipients", "exempt",
                            "action", "local_action", "shadow", "suspend_after"]
}

struct ConfigurationDecoder {
    /// The file name that errors report.
    let file: String

    /// Returns the configuration the root node describes; nil or a null root means all defaults.
    func decode(_ root: YAMLNode?) throws -> Configuration {
        var configuration = Configuration.defaults
        guard let root, !root.isNull else { return configuration }
        guard case .mapping = root.content else {
            throw error(at: root, key: "", "expected a mapping of settings such as 'listen: unix:/path', found \(root.kindDescription)")
        }
        let top = try fields(of: root, at: "", allowed: ConfigurationKeys.top)

        if let node = top["listen"] {
            configuration.listen = try value(of: node, at: "listen") { try listen($0, at: "listen") }
        }
        if let node = top["socket"] {
            try decodeSocket(node, into: &configuration)
        }
        if let node = top["user"] {
            configuration.user = try nonEmptyString(node, at: "user")
        }
        if let node = top["state_directory"] {
            configuration.stateDirectory = try absolutePath(node, at: "state_directory")
        }
        if let node = top["timeout"] {
            let text = try string(node, at: "timeout")
            configuration.timeoutSeconds = try value(of: node, at: "timeout") { _ in try ConfigurationValues.parseDuration(text) }
        }
        if let node = top["fail_action"] {
            configuration.failAction = try choice(node, at: "fail_action", among: Configuration.failActions)
        }
        if let node = top["log_level"] {
            configuration.logLevel = try choice(node, at: "log_level", among: LogLevelSetting.allCases)
        }
        if let node = top["paths"] {
            let paths = try fields(of: node, at: "paths", allowed: ConfigurationKeys.paths)
            if let names = paths["local_daemon_names"] {
                configuration.localDaemonNames = try stringList(names, at: "paths.local_daemon_names")
            }
        }
        if let node = top["identity"] {
            configuration.identity = try decodeIdentity(node)
        }
        if let node = top["headers"] {
            let headers = try fields(of: node, at: "headers", allowed: ConfigurationKeys.headers)
            if let status = headers["status"] {
                let name = try string(status, at: "headers.status")
                try value(of: status, at: "headers.status") { _ in try ConfigurationValues.checkHeaderName(name) }
                configuration.statusHeader = name
            }
        }
        if let node = top["replies"] {
            let replies = try fields(of: node, at: "replies", allowed: ConfigurationKeys.replies)
            if let reply = replies["tempfail"] {
                configuration.tempfailReply = try decodeReply(reply, at: "replies.tempfail", for: .tempfail, defaults: configuration.tempfailReply)
            }
            if let reply = replies["reject"] {
                configuration.rejectReply = try decodeReply(reply, at: "replies.reject", for: .reject, defaults: configuration.rejectReply)
            }
        }
        if let node = top["senders"] {
            configuration.senders = try decodeSenders(node, ipv6PrefixLength: configuration.identity.ipv6PrefixLength)
        }
        if let node = top["limits_overrides"] {
            let path = try string(node, at: "limits_overrides")
            configuration.limitsOverrides = path.isEmpty ? "" : try absolutePath(node, at: "limits_overrides")
        }
        if let node = top["limits"] {
            configuration.limits = try decodeLimits(node)
        }
        if let node = top["control"] {
            configuration.control = try decodeControl(node)
        }
        if let node = top["scoring"] {
            configuration.scoring = try decodeScoring(node)
        }
        if let node = top["notifications"] {
            configuration.notifications = try decodeNotifications(node)
        }
        if let node = top["metrics"] {
            configuration.metrics = try decodeMetrics(node)
        }
        return configuration
    }

    // MARK: Sections

    private func decodeSocket(_ node: YAMLNode, into configuration: inout Configuration) throws {
        let socket = try fields(of: node, at: "socket", allowed: ConfigurationKeys.socket)
        if let mode = socket["mode"] {
            let text = try string(mode, at: "socket.mode")
            configuration.socketMode = try value(of: mode, at: "socket.mode") { _ in try ConfigurationValues.parseSocketMode(text) }
        }
        if let group = socket["group"] {
            configuration.socketGroup = try string(group, at: "socket.group")
        }
    }

    /// Decodes one reply; keys the file leaves out keep the values of `defaults`, and the
    /// combined reply must be valid for `action`.
    private func decodeReply(_ node: YAMLNode, at path: String, for action: Action, defaults: ReplyText) throws -> ReplyText {
        let reply = try fields(of: node, at: path, allowed: ConfigurationKeys.reply)
        var result = defaults
        if let code = reply["code"] {
            result.code = try integer(code, at: "\(path).code")
            try value(of: code, at: "\(path).code") { _ in try ConfigurationValues.checkReplyCode(result.code, for: action) }
        }
        if let status = reply["status"] {
            result.enhancedStatus = try string(status, at: "\(path).status")
            try value(of: status, at: "\(path).status") { _ in
                try ConfigurationValues.checkEnhancedStatus(result.enhancedStatus, code: result.code)
            }
        }
        if let text = reply["text"] {
            result.text = try string(text, at: "\(path).text")
            try value(of: text, at: "\(path).text") { _ in try ConfigurationValues.checkReplyText(result.text) }
        }
        return result
    }

    private func decodeSenders(_ node: YAMLNode, ipv6PrefixLength: Int) throws -> [SenderRule] {
        if node.isNull {
            return []
        }
        guard case .sequence(let items) = node.content else {
            throw error(at: node, key: "senders", "expected a sequence of rules ('- match: ...'), found \(node.kindDescription)")
        }
        return try items.enumerated().map { index, item in
            try decodeSenderRule(item, at: "senders[\(index)]", ipv6PrefixLength: ipv6PrefixLength)
        }
    }

    /// Decodes one rule; an ip pattern with a prefix length must use the configured one.
    private func decodeSenderRule(_ node: YAMLNode, at path: String, ipv6PrefixLength: Int) throws -> SenderRule {
        guard case .mapping = node.content else {
            throw error(at: node, key: path, "expected a rule with the keys match, action and reason, found \(node.kindDescription)")
        }
        let rule = try fields(of: node, at: path, allowed: ConfigurationKeys.senderRule)
        guard let matchNode = rule["match"] else {
            throw error(at: node, key: "\(path).match", "missing key; every sender rule needs a match pattern")
        }
        guard let actionNode = rule["action"] else {
            throw error(at: node, key: "\(path).action", "missing key; every sender rule needs an action")
        }
        let pattern = try string(matchNode, at: "\(path).match")
        try value(of: matchNode, at: "\(path).match") { _ in
            try ConfigurationValues.checkSenderPattern(pattern, ipv6PrefixLength: ipv6PrefixLength)
        }
        let action = try choice(actionNode, at: "\(path).action", among: Action.allCases)

        var reason: String?
        if let reasonNode = rule["reason"] {
            let text = try string(reasonNode, at: "\(path).reason")
            try value(of: reasonNode, at: "\(path).reason") { _ in try ConfigurationValues.checkReason(text) }
            reason = text.isEmpty ? nil : text
        }
        var senderRule = SenderRule(match: pattern, action: action, reason: reason)
        if let scoringNode = rule["scoring"] {
            senderRule.scoring = try plainBoolean(scoringNode, at: "\(path).scoring")
        }
        return senderRule
    }

    // MARK: Typed values

    /// Returns a mapping's values by key after checking every key: each must be a scalar,
    /// appear once and be one of `allowed`. A null node is an empty mapping.
    func fields(of node: YAMLNode, at path: String, allowed: [String]) throws -> [String: YAMLNode] {
        if node.isNull {
            return [:]
        }
        guard case .mapping(let pairs) = node.content else {
            throw error(at: node, key: path, "expected a mapping with the keys \(allowed.joined(separator: ", ")), found \(node.kindDescription)")
        }
        var values: [String: YAMLNode] = [:]
        var keyNodes: [String: YAMLNode] = [:]
        for (keyNode, valueNode) in pairs {
            guard case .scalar(let key, _) = keyNode.content else {
                throw error(at: keyNode, key: path, "a key must be a plain word, found \(keyNode.kindDescription)")
            }
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            if let first = keyNodes[key] {
                throw error(at: keyNode, key: keyPath, "duplicate key; first set at line \(first.line), column \(first.column)")
            }
            guard allowed.contains(key) else {
                throw error(at: keyNode, key: keyPath, unknownKeyMessage(key, allowed: allowed))
            }
            keyNodes[key] = keyNode
            values[key] = valueNode
        }
        return values
    }

    private func unknownKeyMessage(_ key: String, allowed: [String]) -> String {
        if let near = Suggestion.nearest(to: key, among: allowed) {
            return "unknown key; did you mean '\(near)'?"
        }
        return "unknown key; valid keys here: \(allowed.joined(separator: ", "))"
    }

    /// Returns a YAML 1.2 boolean: plain `true` or `false`, also capitalized or in capitals.
    /// A quoted "false" or a YAML 1.1 `no` is an error instead of a silent surprise.
    func plainBoolean(_ node: YAMLNode, at path: String) throws -> Bool {
        if case .scalar(let text, isPlain: true) = node.content {
            switch text {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: break
            }
        }
        throw error(at: node, key: path, "expected true or false, found \(node.kindDescription)")
    }

    /// Returns a scalar's text. Any scalar but null is a string, so `user: 1000` is the user "1000".
    func string(_ node: YAMLNode, at path: String) throws -> String {
        guard case .scalar(let text, _) = node.content, !node.isNull else {
            throw error(at: node, key: path, "expected a string, found \(node.kindDescription)")
        }
        return text
    }

    func nonEmptyString(_ node: YAMLNode, at path: String) throws -> String {
        let text = try string(node, at: path)
        guard !text.isEmpty else {
            throw error(at: node, key: path, "must not be empty")
        }
        return text
    }

    func absolutePath(_ node: YAMLNode, at path: String) throws -> String {
        let text = try string(node, at: path)
        guard text.hasPrefix("/") else {
            throw error(at: node, key: path, "must be an absolute path, such as /var/lib/egress-milter")
        }
        return text
    }

    /// Returns a plain decimal integer; a quoted number is a string in YAML and rejected.
    func integer(_ node: YAMLNode, at path: String) throws -> Int {
        guard case .scalar(let text, isPlain: true) = node.content, let number = Int(text) else {
            throw error(at: node, key: path, "expected an integer, found \(node.kindDescription)")
        }
        return number
    }

    private func stringList(_ node: YAMLNode, at path: String) throws -> [String] {
        if node.isNull {
            return []
        }
        guard case .sequence(let items) = node.content else {
            throw error(at: node, key: path, "expected a sequence of strings such as [egress-local], found \(node.kindDescription)")
        }
        return try items.enumerated().map { index, item in
            try nonEmptyString(item, at: "\(path)[\(index)]")
        }
    }

    private func listen(_ node: YAMLNode, at path: String) throws -> String {
        let spec = try string(node, at: path)
        try ConfigurationValues.checkListen(spec)
        return spec
    }

    /// Returns the case named by a scalar, suggesting the nearest name for a typo.
    func choice<Choice: RawRepresentable>(_ node: YAMLNode, at path: String, among choices: [Choice]) throws -> Choice
    where Choice.RawValue == String {
        let text = try string(node, at: path)
        if let match = choices.first(where: { $0.rawValue == text }) {
            return match
        }
        let names = choices.map(\.rawValue)
        var message = "invalid value '\(text)'"
        if let near = Suggestion.nearest(to: text, among: names) {
            message += "; did you mean '\(near)'?"
        }
        message += " (expected one of: \(names.joined(separator: ", ")))"
        throw error(at: node, key: path, message)
    }

    /// Runs a value check and places its `ValueError` at the node.
    @discardableResult
    func value<Result>(of node: YAMLNode, at path: String, _ check: (YAMLNode) throws -> Result) throws -> Result {
        do {
            return try check(node)
        } catch let problem as ValueError {
            throw error(at: node, key: path, problem.message)
        }
    }

    func error(at node: YAMLNode, key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(file: file, line: node.line, column: node.column, key: key, message: message)
    }
}
