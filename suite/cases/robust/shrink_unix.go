//go:build unix

package robust

import (
	"fmt"
	"syscall"
)

// robustShrink is the bare client's net.Dialer Control: it sets the
// socket's buffers before the handshake, where the window scale is agreed.
func robustShrink(_, _ string, rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		for _, o := range []struct{ opt, size int }{{syscall.SO_RCVBUF, robustRcvBuf}, {syscall.SO_SNDBUF, robustSndBuf}} {
			if err == nil {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, o.opt, o.size)
			}
		}
	}); cerr != nil {
		return fmt.Errorf("bare client socket: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("bare client socket buffers: %w", err)
	}
	return nil
}
