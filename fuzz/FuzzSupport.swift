// Stands in for the one type of EgressCore outside the decoder sources that the decoder
// uses, so the fuzz target compiles the decoder alone. It must stay field-for-field the same
// as `Header` in Sources/EgressCore/Identity.swift.

public struct Header: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}
