// The MTA side of the milter protocol, small enough for tests: it writes command packets and
// reads response packets over a unix or TCP socket. Every packet is a 4-byte big-endian
// length (counting the command byte), one command byte and the data. The client checks the
// length of what it reads and throws on a short or oversized packet. It must never block
// forever, so reads time out after `readTimeoutSeconds`.
import Foundation
import Glibc

/// One packet read from the milter.
struct MilterPacket: Equatable, CustomStringConvertible {
    var command: UInt8
    var data: [UInt8]

    var commandCharacter: Character {
        Character(UnicodeScalar(command))
    }

    var text: String {
        String(decoding: data, as: UTF8.self)
    }

    var description: String {
        "\(commandCharacter) \(text.debugDescription)"
    }
}

/// The milter's reply to the MTA's option negotiation ('O').
struct NegotiationReply {
    var version: UInt32
    var actions: UInt32
    var steps: UInt32
    /// Requested macro lists by SMFIM_* stage index.
    var macroLists: [UInt32: String]
}

/// The client address sent in the connect packet.
enum ClientAddress {
    case ipv4(String, port: UInt16)
    case ipv6(String, port: UInt16)
    case unix(String)
    case unknown
}

struct ClientError: Error, CustomStringConvertible {
    var description: String
}

/// Protocol constants from libmilter/mfdef.h.
enum MilterProtocol {
    static let version: UInt32 = 6
    static let allActions: UInt32 = 0x1FF
    static let allSteps: UInt32 = 0x1F_FFFF

    static let noConnect: UInt32 = 0x1
    static let noHelo: UInt32 = 0x2
    static let noMail: UInt32 = 0x4
    static let noRecipient: UInt32 = 0x8
    static let noBody: UInt32 = 0x10
    static let noHeaders: UInt32 = 0x20
    static let noEndOfHeaders: UInt32 = 0x40
    static let noUnknown: UInt32 = 0x100
    static let noData: UInt32 = 0x200
    static let skip: UInt32 = 0x400
    static let noReplyConnect: UInt32 = 0x1000
    static let noReplyHelo: UInt32 = 0x2000
    static let noReplyMail: UInt32 = 0x4000
    static let noReplyRecipient: UInt32 = 0x8000
    static let noReplyData: UInt32 = 0x1_0000
    static let noReplyUnknown: UInt32 = 0x2_0000
    static let noReplyEndOfHeaders: UInt32 = 0x4_0000
    static let noReplyBody: UInt32 = 0x8_0000
    static let noReplyHeader: UInt32 = 0x80
    static let headerLeadingSpace: UInt32 = 0x10_0000
    static let everyNoReplyBit: UInt32 = noReplyConnect | noReplyHelo | noReplyMail | noReplyRecipient
        | noReplyData | noReplyUnknown | noReplyEndOfHeaders | noReplyBody | noReplyHeader

    static let addHeaders: UInt32 = 0x1
    static let changeBody: UInt32 = 0x2
    static let changeHeaders: UInt32 = 0x10
    static let quarantine: UInt32 = 0x20
    static let setMacroList: UInt32 = 0x100

    /// Responses after which the MTA moves on; everything else at end of message is a modification.
    static let finalResponses: Set<Character> = ["c", "a", "r", "t", "d", "y", "s"]
    /// A limit far above anything these tests exchange; a longer length means a broken stream.
    static let maximumPacketBytes = 1 << 20
}

final class MilterProtocolClient {
    static let readTimeoutSeconds = 10

    private let descriptor: Int32

    /// Connects to a unix socket.
    init(unixSocketPath path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw ClientError(description: "socket failed: \(String(cString: strerror(errno)))")
        }

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(descriptor)
            throw ClientError(description: "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw ClientError(description: "connect to \(path) failed: \(reason)")
        }
        try setReadTimeout()
    }

    /// Connects over TCP to a numeric IPv4 or IPv6 address.
    init(tcpHost host: String, port: UInt16) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &results) == 0, let first = results else {
            throw ClientError(description: "invalid address \(host) port \(port)")
        }
        defer { freeaddrinfo(results) }

        descriptor = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw ClientError(description: "socket failed: \(String(cString: strerror(errno)))")
        }
        guard Glibc.connect(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw ClientError(description: "connect to \(host) port \(port) failed: \(reason)")
        }
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        try setReadTimeout()
    }

    deinit {
        Glibc.close(descriptor)
    }

    private func setReadTimeout() throws {
        var timeout = timeval(tv_sec: Self.readTimeoutSeconds, tv_usec: 0)
        guard setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw ClientError(description: "setsockopt SO_RCVTIMEO failed")
        }
    }

    // MARK: - Packets

    func send(_ command: Character, _ data: [UInt8] = []) throws {
        let length = UInt32(data.count + 1)
        var packet = withUnsafeBytes(of: length.bigEndian) { Array($0) }
        packet.append(command.asciiValue!)
        packet.append(contentsOf: data)

        var offset = 0
        while offset < packet.count {
            let written = packet[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else {
                throw ClientError(description: "write of '\(command)' packet failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Reads one packet; throws on end of stream, timeout or an unreasonable length.
    func receive() throws -> MilterPacket {
        guard let header = try read(count: 4) else {
            throw ClientError(description: "the milter closed the connection")
        }
        let length = header.reduce(0) { ($0 << 8) | Int($1) }
        guard length >= 1, length <= MilterProtocol.maximumPacketBytes else {
            throw ClientError(description: "bad packet length \(length)")
        }
        guard let body = try read(count: length) else {
            throw ClientError(description: "the milter closed the connection inside a packet")
        }
        return MilterPacket(command: body[0], data: Array(body.dropFirst()))
    }

    /// Returns true when the milter has closed the connection (read returns end of stream).
    func waitForClose() throws -> Bool {
        var byte: UInt8 = 0
        let count = Glibc.read(descriptor, &byte, 1)
        if count == 0 {
            return true
        }
        if count < 0 {
            throw ClientError(description: "read failed while waiting for close: \(String(cString: strerror(errno)))")
        }
        return false
    }

    private func read(count: Int) throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = buffer[offset...].withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if received == 0 {
                return nil
            }
            guard received > 0 else {
                throw ClientError(description: "read failed: \(String(cString: strerror(errno)))")
            }
            offset += received
        }
        return buffer
    }

    // MARK: - Commands

    func negotiate(version: UInt32 = MilterProtocol.version,
                   actions: UInt32 = MilterProtocol.allActions,
                   steps: UInt32 = MilterProtocol.allSteps) throws -> NegotiationReply {
        try send("O", bigEndianBytes(version) + bigEndianBytes(actions) + bigEndianBytes(steps))
        let packet = try receive()
        guard packet.commandCharacter == "O", packet.data.count >= 12 else {
            throw ClientError(description: "expected an 'O' reply of at least 12 bytes, got \(packet)")
        }

        var reply = NegotiationReply(version: uint32(packet.data, at: 0), actions: uint32(packet.data, at: 4),
                                     steps: uint32(packet.data, at: 8), macroLists: [:])
        // Each macro list is a 4-byte stage index followed by a NUL-terminated list of names.
        var offset = 12
        while offset + 4 < packet.data.count {
            let stage = uint32(packet.data, at: offset)
            offset += 4
            guard let end = packet.data[offset...].firstIndex(of: 0) else {
                throw ClientError(description: "macro list without terminating NUL")
            }
            reply.macroLists[stage] = String(decoding: packet.data[offset..<end], as: UTF8.self)
            offset = end + 1
        }
        return reply
    }

    /// Sends macro definitions ('D') for the command that follows; they get no reply.
    func defineMacros(for command: Character, _ macros: KeyValuePairs<String, String>) throws {
        var data = [command.asciiValue!]
        for (name, value) in macros {
            data += nulTerminated(name) + nulTerminated(value)
        }
        try send("D", data)
    }

    func connect(hostname: String, address: ClientAddress) throws -> MilterPacket {
        try sendConnect(hostname: hostname, address: address)
        return try receive()
    }

    func helo(_ name: String) throws -> MilterPacket {
        try sendHelo(name)
        return try receive()
    }

    /// MAIL FROM: the address first, then the ESMTP arguments.
    func mail(_ words: [String]) throws -> MilterPacket {
        try sendMail(words)
        return try receive()
    }

    func recipient(_ words: [String]) throws -> MilterPacket {
        try sendRecipient(words)
        return try receive()
    }

    func data() throws -> MilterPacket {
        try send("T")
        return try receive()
    }

    func header(name: String, value: [UInt8]) throws -> MilterPacket {
        try sendHeader(name: name, value: value)
        return try receive()
    }

    func endOfHeaders() throws -> MilterPacket {
        try send("N")
        return try receive()
    }

    func body(_ chunk: [UInt8]) throws -> MilterPacket {
        try sendBody(chunk)
        return try receive()
    }

    // The send… methods write a command without reading a response, as the MTA does for a
    // stage negotiated without reply (SMFIP_NR_*).

    func sendConnect(hostname: String, address: ClientAddress) throws {
        var data = nulTerminated(hostname)
        switch address {
        case .ipv4(let host, let port):
            data += [UInt8(ascii: "4")] + bigEndianBytes(port) + nulTerminated(host)
        case .ipv6(let host, let port):
            data += [UInt8(ascii: "6")] + bigEndianBytes(port) + nulTerminated(host)
        case .unix(let path):
            data += [UInt8(ascii: "L")] + bigEndianBytes(UInt16(0)) + nulTerminated(path)
        case .unknown:
            data += [UInt8(ascii: "U")]
        }
        try send("C", data)
    }

    func sendHelo(_ name: String) throws {
        try send("H", nulTerminated(name))
    }

    func sendMail(_ words: [String]) throws {
        try send("M", words.flatMap(nulTerminated))
    }

    func sendRecipient(_ words: [String]) throws {
        try send("R", words.flatMap(nulTerminated))
    }

    func sendHeader(name: String, value: [UInt8]) throws {
        try send("L", nulTerminated(name) + value + [0])
    }

    func sendBody(_ chunk: [UInt8]) throws {
        try send("B", chunk)
    }

    /// Sends end of message and returns every packet up to and including the final response.
    func endOfMessage() throws -> [MilterPacket] {
        try send("E")
        var packets: [MilterPacket] = []
        while true {
            let packet = try receive()
            packets.append(packet)
            if MilterProtocol.finalResponses.contains(packet.commandCharacter) {
                return packets
            }
        }
    }

    /// Aborts the current message; the milter sends no reply.
    func abort() throws {
        try send("A")
    }

    func unknown(_ command: String) throws -> MilterPacket {
        try send("U", nulTerminated(command))
        return try receive()
    }

    /// Ends the connection; the milter closes its side without a reply.
    func quit() throws {
        try send("Q")
    }
}

func nulTerminated(_ text: String) -> [UInt8] {
    Array(text.utf8) + [0]
}

func bigEndianBytes<Integer: FixedWidthInteger>(_ value: Integer) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

func uint32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    bytes[offset..<offset + 4].reduce(0) { ($0 << 8) | UInt32($1) }
}
