package postgres

import (
	"syscall"
)

// tcpUserTimeout is TCP_USER_TIMEOUT in milliseconds: how long sent data
// may stay unacknowledged before the connection fails.
const tcpUserTimeout = 10_000

// setUserTimeout sets TCP_USER_TIMEOUT on a new TCP connection's socket.
func setUserTimeout(network, address string, c syscall.RawConn) error {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil // a Unix socket
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, 0x12 /* TCP_USER_TIMEOUT */, tcpUserTimeout)
	})
	if err != nil {
		return err
	}
	return serr
}
