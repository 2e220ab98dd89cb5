// Writes a `Configuration` back as YAML in the layout of the config file, for
// `--check-config`. The output must always parse back to the same configuration, because an
// admin may paste it into a file. A test checks this with tricky strings.

extension Configuration {
    /// Returns the effective settings as YAML, every key included, in the config file's layout.
    public func summary() -> String {
        var lines = ["# Effective settings: the built-in defaults, overridden by what the configuration file sets."]
        lines.append("listen: \(YAMLText.scalar(listen))")

        lines.append("socket:")
        lines.append("  mode: \"\(ConfigurationValues.formatSocketMode(socketMode))\"")
        lines.append("  group: \(YAMLText.scalar(socketGroup))")
        lines.append("user: \(YAMLText.scalar(user))")
        lines.append("state_directory: \(YAMLText.scalar(stateDirectory))")
        lines.append("timeout: \(ConfigurationValues.formatDuration(timeoutSeconds))")
        lines.append("fail_action: \(failAction.rawValue)")
        lines.append("log_level: \(logLevel.rawValue)")

        lines.append("paths:")
        lines.append("  local_daemon_names: \(YAMLText.flowSequence(localDaemonNames))")
        // The stamp key itself is never printed, only the file it comes from.
        lines.append("identity:")
        lines.append("  stamp_header: \(YAMLText.scalar(identity.stampHeader))")
        lines.append("  stamp_key_file: \(YAMLText.scalar(identity.stampKeyFile))")
        lines.append("  stamp_max_age: \(ConfigurationValues.formatDuration(identity.stampMaximumAgeSeconds))")
        lines.append("  ipv6_prefix: \(identity.ipv6PrefixLength)")
        lines.append("  trust_local_envelope_sender: \(identity.trustLocalEnvelopeSender)")
        lines.append("  local_sender_domains: \(YAMLText.flowSequence(identity.localSenderDomains))")
        lines.append("headers:")
        lines.append("  status: \(YAMLText.scalar(statusHeader))")

        lines.append("replies:")
        for (name, reply) in [("tempfail", tempfailReply), ("reject", rejectReply)] {
            lines.append("  \(name):")
            lines.append("    code: \(reply.code)")
            lines.append("    status: \(YAMLText.scalar(reply.enhancedStatus))")
            lines.append("    text: \(YAMLText.scalar(reply.text))")
        }

        if senders.isEmpty {
            lines.append("senders: []")
        } else {
            lines.append("senders:")
            for rule in senders {
                lines.append("  - match: \(YAMLText.scalar(rule.match))")
                lines.append("    action: \(rule.action.rawValue)")
                if let reason = rule.reason {
                    lines.append("    reason: \(YAMLText.scalar(reason))")
                }
                if !rule.scoring {
                    lines.append("    scoring: false")
                }
            }
        }
        lines.append("limits_overrides: \(YAMLText.scalar(limitsOverrides))")
        lines.append(contentsOf: limitsSummary())
        lines.append("control:")
        lines.append("  socket: \(YAMLText.scalar(control.socketPath))")
        lines.append("  mode: \"\(ConfigurationValues.formatSocketMode(control.socketMode))\"")
        lines.append("  group: \(YAMLText.scalar(control.socketGroup))")
        lines.append(contentsOf: scoringSummary())
        lines.append(contentsOf: notificationsSummary())
        lines.append(contentsOf: metricsSummary())
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `limits:` section; optional keys appear only when set. Windows are written plain,
    /// because their text ("30/1m", "1000/1d hard") is always a plain YAML string.
    private func limitsSummary() -> [String] {
        guard !limits.isEmpty else { return ["limits: []"] }
        var lines = ["limits:"]
        for rule in limits {
            lines.append("  - name: \(YAMLText.scalar(rule.name))")
            lines.append("    level: \(rule.level.rawValue)")
            if !rule.messages.isEmpty {
                lines.append("    messages: [\(rule.messages.map(\.description).joined(separator: ", "))]")
            }
            if !rule.recipients.isEmpty {
                lines.append("    recipients: [\(rule.recipients.map(\.description).joined(separator: ", "))]")
            }
            if let cap = rule.maximumRecipients {
                lines.append("    max_recipients: \(cap)")
            }
            if !rule.exempt.isEmpty {
                lines.append("    exempt: \(YAMLText.flowSequence(rule.exempt))")
            }
            if let action = rule.action {
                lines.append("    action: \(action.rawValue)")
            }
            if let action = rule.localAction {
                lines.append("    local_action: \(action.rawValue)")
            }
            lines.append("    shadow: \(rule.shadow)")
            if let threshold = rule.suspendAfter {
                lines.append("    suspend_after: \(YAMLText.scalar(threshold.description))")
            }
        }
        return lines
    }
}

/// Formatting of YAML scalars that read back as the same string.
enum YAMLText {
    /// Writes `text` plain when YAML reads it back unchanged as a string, else double-quoted.
    static func scalar(_ text: String) -> String {
        isSafePlain(text) ? text : doubleQuoted(text)
    }

    static func flowSequence(_ items: [String]) -> String {
        "[" + items.map(scalar).joined(separator: ", ") + "]"
    }

    /// Plain style is kept to a conservative alphabet, and to words that no YAML version reads
    /// as null, a boolean or a number.
    private static func isSafePlain(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last else { return false }
        let allowed: (Unicode.Scalar) -> Bool = { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_./@:+".unicodeScalars.contains(scalar))
        }
        guard text.unicodeScalars.allSatisfy(allowed),
              first.properties.isAlphabetic || first == "/",
              last != ":" else {
            return false
        }
        let reserved: Set<String> = ["null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf"]
        return !reserved.contains(text.lowercased())
    }

    private static func doubleQuoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    result += "\\x" + hexDigits(scalar.value, width: 2)
                } else if (0x80...0x9F).contains(scalar.value) || [0x2028, 0x2029, 0xFEFF].contains(scalar.value) {
                    // YAML readers treat these as line breaks or byte order marks, or reject them.
                    result += "\\u" + hexDigits(scalar.value, width: 4)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    private static func hexDigits(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
