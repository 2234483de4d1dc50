package l4

// CopiedBytes reports the bytes relays moved through a Go buffer so far.
func CopiedBytes() int64 { return copiedBytes.Load() }
