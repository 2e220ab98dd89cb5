// The streaming stages of the MIME decoder: a line splitter that treats CRLF, bare LF and
// bare CR alike, and the base64 and quoted-printable transfer decoders. Each stage takes
// bytes as they arrive, in chunks of any size split at any byte, and passes its output on.
//
// None of them may keep more than a bounded amount of input: the line splitter keeps at most
// `maximumLineBytes` of an unfinished line, the decoders a few bytes of an unfinished quantum.

/// A stage of the decoder pipeline: receives bytes in any chunking, then `finish()` once.
protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeBufferPointer<UInt8>)
    func finish()
    /// Whether the sink still looks at the bytes; when false, a decoder may report how many
    /// decoded bytes there would have been (`skip`) instead of decoding them.
    var wantsBytes: Bool { get }
    /// Counts `count` decoded bytes that were not decoded, because the sink wanted none.
    func skip(_ count: Int)
}

extension ByteSink {
    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { write($0) }
    }

    var wantsBytes: Bool { true }

    func skip(_ count: Int) {}
}

/// The line break that ended a line.
enum LineEnding {
    /// No line break: a piece of an overlong line, or the last line of the input.
    case none
    case lf
    case cr
    case crlf

    var bytes: [UInt8] {
        switch self {
        case .none: return []
        case .lf: return [0x0A]
        case .cr: return [0x0D]
        case .crlf: return [0x0D, 0x0A]
        }
    }
}

/// Splits bytes into lines at CRLF, LF or CR, across chunk borders. A line longer than
/// `maximumLineBytes` is passed on in pieces ending with `.none`.
struct LineSplitter {
    let maximumLineBytes: Int
    /// The unfinished line from earlier chunks.
    private var carry: [UInt8] = []
    /// The last chunk ended with CR after `carry`, so the next byte decides between CRLF and bare CR.
    private var pendingCR = false

    init(maximumLineBytes: Int) {
        precondition(maximumLineBytes > 0, "a line must hold at least one byte")
        self.maximumLineBytes = maximumLineBytes
    }

    mutating func write(_ input: UnsafeBufferPointer<UInt8>, _ handle: (UnsafeBufferPointer<UInt8>, LineEnding) -> Void) {
        let count = input.count
        var start = 0
        if pendingCR, count > 0 {
            pendingCR = false
            let ending: LineEnding = input[0] == 0x0A ? .crlf : .cr
            start = ending == .crlf ? 1 : 0
            emitCarry(ending, handle)
        }
        while start < count {
            let limit = min(count, start + max(0, maximumLineBytes - carry.count))
            var index = start
            while index < limit {
                let byte = input[index]
                if byte == 0x0A || byte == 0x0D { break }
                index += 1
            }

            if index < limit {
                // A line break at `index`.
                var next = index + 1
                if input[index] == 0x0A {
                    emit(input, start..<index, .lf, handle)
                } else if next < count {
                    let isCRLF = input[next] == 0x0A
                    if isCRLF { next += 1 }
                    emit(input, start..<index, isCRLF ? .crlf : .cr, handle)
                } else {
                    // A CR ends the chunk: wait for the next byte.
                    carry.append(contentsOf: UnsafeBufferPointer(rebasing: input[start..<index]))
                    pendingCR = true
                }
                start = next
            } else if limit == count && carry.count + (count - start) < maximumLineBytes {
                carry.append(contentsOf: UnsafeBufferPointer(rebasing: input[start..<count]))
                start = count
            } else {
                // The line reached the maximum length: pass on what there is as a piece.
                emit(input, start..<index, .none, handle)
                start = index
            }
        }
    }

    mutating func finish(_ handle: (UnsafeBufferPointer<UInt8>, LineEnding) -> Void) {
        if pendingCR {
            pendingCR = false
            emitCarry(.cr, handle)
        } else if !carry.isEmpty {
            emitCarry(.none, handle)
        }
    }

    private mutating func emitCarry(_ ending: LineEnding, _ handle: (UnsafeBufferPointer<UInt8>, LineEnding) -> Void) {
        carry.withUnsafeBufferPointer { handle($0, ending) }
        carry.removeAll(keepingCapacity: true)
    }

    private mutating func emit(_ input: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ ending: LineEnding,
                               _ handle: (UnsafeBufferPointer<UInt8>, LineEnding) -> Void) {
        if carry.isEmpty {
            handle(UnsafeBufferPointer(rebasing: input[range]), ending)
        } else {
            carry.append(contentsOf: UnsafeBufferPointer(rebasing: input[range]))
            emitCarry(ending, handle)
        }
    }
}

/// Decodes base64 as it arrives. Bytes outside the alphabet are skipped, and those that are
/// not white space are counted, because they mean a broken or disguised part. Decoding
/// goes on after padding, as mail readers do with concatenated base64 blocks.
final class Base64DecodingSink: ByteSink {
    private let downstream: ByteSink
    private let context: ScanContext
    private var accumulator: UInt32 = 0
    private var bits = 0
    private var output: [UInt8] = []

    /// Decoded bytes collected before they are passed on.
    private static let batchBytes = 8192

    init(downstream: ByteSink, context: ScanContext) {
        self.downstream = downstream
        self.context = context
        output.reserveCapacity(Self.batchBytes + 4)
    }

    func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        if output.isEmpty && !downstream.wantsBytes {
            count(bytes)
            return
        }
        var invalid = 0
        // Locals in the loop: stored properties of a class would be checked for exclusive
        // access on every byte.
        var accumulator = self.accumulator
        var bits = self.bits
        var output = self.output
        self.output = []
        Base64.values.withUnsafeBufferPointer { values in
            for byte in bytes {
                let value = values[Int(byte)]
                if value == 0xFF {
                    if byte == 0x3D {
                        // Padding ends a quantum; the bits left over are not data.
                        accumulator = 0
                        bits = 0
                    } else if byte != 0x0A && byte != 0x0D && byte != 0x20 && byte != 0x09 {
                        invalid += 1
                    }
                    continue
                }
                accumulator = accumulator << 6 | UInt32(value)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                }
            }
        }
        self.accumulator = accumulator
        self.bits = bits
        self.output = output
        context.anomalies.invalidBase64Characters &+= invalid
        if output.count >= Self.batchBytes {
            flush()
        }
    }

    func finish() {
        flush()
        downstream.finish()
    }

    /// Counts the bytes the input would decode to, for a sink that wants no more of them
    /// (the rest of a large attachment), at a fraction of the cost of decoding.
    private func count(_ bytes: UnsafeBufferPointer<UInt8>) {
        var bits = self.bits
        var produced = 0
        var invalid = 0
        Base64.values.withUnsafeBufferPointer { values in
            for byte in bytes {
                if values[Int(byte)] != 0xFF {
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        produced += 1
                    }
                } else if byte == 0x3D {
                    bits = 0
                } else if byte != 0x0A && byte != 0x0D && byte != 0x20 && byte != 0x09 {
                    invalid += 1
                }
            }
        }
        // The accumulator's content no longer matters: nothing more is decoded.
        self.bits = bits
        context.anomalies.invalidBase64Characters &+= invalid
        downstream.skip(produced)
    }

    private func flush() {
        guard !output.isEmpty else { return }
        downstream.write(output)
        output.removeAll(keepingCapacity: true)
    }
}

/// Decodes quoted-printable as it arrives: "=XX" escapes, "=" at a line end as a soft line
/// break, trailing white space removed, every line break written as LF. A broken escape
/// stays as written.
/// NOTE: a soft line break is seen only at the end of a whole line. In a line longer than
/// the line limit, an "=" that happens to end a piece is kept literally.
final class QuotedPrintableDecodingSink: ByteSink {
    private let downstream: ByteSink
    private var splitter: LineSplitter
    private var output: [UInt8] = []

    private static let batchBytes = 8192

    init(downstream: ByteSink, maximumLineBytes: Int) {
        self.downstream = downstream
        self.splitter = LineSplitter(maximumLineBytes: maximumLineBytes)
    }

    func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        // A local buffer: appending to a stored property of a class checks exclusive access
        // on every byte.
        var decoded = output
        output = []
        splitter.write(bytes) { line, ending in
            Self.decodeLine(line, ending, into: &decoded)
        }
        output = decoded
        if output.count >= Self.batchBytes {
            flush()
        }
    }

    func finish() {
        var decoded = output
        output = []
        splitter.finish { line, ending in
            Self.decodeLine(line, ending, into: &decoded)
        }
        output = decoded
        flush()
        downstream.finish()
    }

    private static func decodeLine(_ line: UnsafeBufferPointer<UInt8>, _ ending: LineEnding, into output: inout [UInt8]) {
        var end = line.count
        if ending != .none {
            while end > 0 && (line[end - 1] == 0x20 || line[end - 1] == 0x09) {
                end -= 1
            }
        }
        var softBreak = false
        if ending != .none, end > 0, line[end - 1] == 0x3D {
            softBreak = true
            end -= 1
        }

        var index = 0
        while index < end {
            let byte = line[index]
            if byte == 0x3D, index + 2 < end,
               let high = hexValue(line[index + 1]), let low = hexValue(line[index + 2]) {
                output.append(high << 4 | low)
                index += 3
                continue
            }
            output.append(byte)
            index += 1
        }
        if ending != .none && !softBreak {
            output.append(0x0A)
        }
    }

    private func flush() {
        guard !output.isEmpty else { return }
        downstream.write(output)
        output.removeAll(keepingCapacity: true)
    }
}
