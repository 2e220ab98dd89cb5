// The version of the whole product, which every binary prints: the daemon, egressctl and the
// submission wrapper come from one tree and are released together.

public let egressMilterVersion = "0.1.0"
