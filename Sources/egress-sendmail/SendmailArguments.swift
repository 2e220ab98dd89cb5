// Reads a sendmail command line the way Postfix's sendmail(1) does, for two facts only: does
// it submit a message from standard input, and which envelope sender does it give. The
// arguments themselves go to the real sendmail unchanged; this parser never edits them.
//
// Options end at the first argument that is not an option, or at "--", as in Postfix, which
// stops getopt there (no GNU argument permutation).

/// The two facts of a sendmail command line that the wrapper needs.
struct SendmailArguments: Equatable {
    /// Whether the command enqueues a message read from standard input. False for queue
    /// listings and flushes (-bp, -q), alias rebuilds (-bi, -I), SMTP on standard input (-bs),
    /// address verification (-bv) and the daemon (-bd): those pass through unstamped and the
    /// wrapper never reads their input.
    var submitsMessage = true
    /// Argument of the last -f or -r option; empty when there was none.
    var envelopeSender = ""

    /// Option letters that take a value, attached ("-fuser") or as the next argument, from
    /// Postfix's getopt list "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx".
    private static let lettersWithValue: Set<Character> = ["A", "B", "C", "F", "L", "N", "O", "R", "V", "X",
                                                             "b", "e", "f", "h", "o", "p", "r", "q"]

    /// Parses the arguments after the program name.
    init(_ arguments: [String]) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" || !argument.hasPrefix("-") || argument == "-" {
                break
            }
            // Postfix treats a bare "-q" (flush the queue) outside getopt.
            if argument == "-q" {
                submitsMessage = false
                continue
            }

            var letters = Substring(argument.dropFirst())
            while let letter = letters.first {
                letters = letters.dropFirst()
                guard Self.lettersWithValue.contains(letter) else {
                    if letter == "I" {
                        submitsMessage = false
                    }
                    continue
                }
                let value: String
                if !letters.isEmpty {
                    value = String(letters)
                    letters = ""
                } else if index < arguments.count {
                    value = arguments[index]
                    index += 1
                } else {
                    // A missing value is the real sendmail's usage error to report.
                    break
                }
                apply(letter, value)
            }
        }
    }

    private mutating func apply(_ letter: Character, _ value: String) {
        switch letter {
        case "f", "r":
            envelopeSender = value
        case "b":
            // Only -bm (the default) delivers mail read from standard input.
            if value.first != "m" {
                submitsMessage = false
            }
        case "q":
            submitsMessage = false
        default:
            break
        }
    }
}
