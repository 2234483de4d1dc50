// Package netio gives workers their listeners and connections. Today it has
// the epoll driver (Go's own netpoller through package net); the io_uring
// driver plugs in behind the same net.Listener / net.Conn types.
package netio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ListenTCP binds addr with SO_REUSEPORT, so every worker binds the same
// address and the kernel spreads new connections among them. The
// connections it accepts have TCP_NODELAY and no TCP keep-alive probes, as
// the io_uring driver's (and nginx's, without so_keepalive): the server's
// timeouts close idle clients, and package net's default probes cost four
// setsockopt(2) calls per connection.
func ListenTCP(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netio: listening on %s: %w", addr, err)
	}
	return ln, nil
}

// UnixListener is a Unix stream listener that removes its socket file on
// Close only while the file is still the one it bound: another process
// that replaced it (after this one was taken for stale) keeps its own.
type UnixListener struct {
	*net.UnixListener
	file   SocketFile
	unlink bool
}

// SetUnlinkOnClose says whether Close removes the socket file (default
// true).
func (l *UnixListener) SetUnlinkOnClose(unlink bool) { l.unlink = unlink }

// Socket returns the socket file the listener bound.
func (l *UnixListener) Socket() SocketFile { return l.file }

// Close closes the listener and removes its socket file if asked to.
func (l *UnixListener) Close() error {
	err := l.UnixListener.Close()
	if l.unlink {
		l.file.Remove()
	}
	return err
}

// SocketFile is a socket file as it was bound: its path and identity
// (device, inode, and birth time, since a freed inode number can come back
// for the next file; the change time where the file system keeps no birth
// time, which a chmod then changes too).
type SocketFile struct {
	Path     string
	dev, ino uint64
	born     unix.StatxTimestamp
}

// identify reads the identity of the file at path.
func identify(path string) (SocketFile, bool) {
	var st unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO|unix.STATX_BTIME|unix.STATX_CTIME, &st) != nil {
		return SocketFile{}, false
	}
	f := SocketFile{Path: path, dev: unix.Mkdev(st.Dev_major, st.Dev_minor), ino: st.Ino, born: st.Btime}
	if st.Mask&unix.STATX_BTIME == 0 {
		f.born = st.Ctime
	}
	return f, true
}

// Remove removes the file if the path still names the same file.
func (s SocketFile) Remove() {
	if s.Path == "" {
		return
	}
	if now, ok := identify(s.Path); ok && now == s {
		os.Remove(s.Path)
	}
}

// ListenUnix binds a Unix stream socket at path, replacing a stale socket
// file left by a process that is gone (a connect refused). A path in use by
// a live listener, or one that cannot be told apart from one (a full
// backlog), is an error. The file is removed when the listener is closed.
//
// Processes starting at once on the same stale file take turns, under a
// lock on the file's directory: otherwise each could take the file for
// stale, and the second remove the first's fresh socket.
func ListenUnix(path string) (*UnixListener, error) {
	if unlock := lockDir(filepath.Dir(path)); unlock != nil {
		defer unlock()
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("netio: %s exists and is not a socket", path)
		}
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("netio: %s: %w", path, syscall.EADDRINUSE)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("netio: %s may be in use: %w", path, err)
		}
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("netio: listening on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // ours does, if the file is still ours
	l := &UnixListener{UnixListener: ln, file: SocketFile{Path: path}, unlink: true}
	if f, ok := identify(path); ok {
		l.file = f
	}
	return l, nil
}

// lockDir takes an exclusive flock on dir and returns its release, or nil
// where dir cannot be opened or locked within a few seconds (the caller
// goes on unserialised: the lock only closes a race between two starts,
// and another program may hold a lock on the directory for its own ends).
func lockDir(dir string) func() {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	for deadline := time.Now().Add(3 * time.Second); ; {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK && err != unix.EINTR || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		unix.Close(fd)
		return nil
	}
	return func() { unix.Close(fd) } // closing releases the lock
}

// File returns a dup of the listener's socket, to hand to a child process.
//
// The copy is made with fcntl(F_DUPFD_CLOEXEC), not the listener's File
// method: os/exec hands a child its ExtraFiles through File.Fd, which puts
// a file that os made non-blocking back into blocking mode, and that mode
// belongs to the socket every process shares. A worker already running
// on the epoll runtime would then block in accept(2) and never get out of
// its listener's Close. A file os finds already non-blocking is left so.
func File(ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("netio: %T cannot give its file: %w", ln, errors.ErrUnsupported)
	}
	nfd, err := dupCloexec(sc)
	if err != nil {
		return nil, fmt.Errorf("netio: listener's file: %w", err)
	}
	return os.NewFile(uintptr(nfd), ln.Addr().String()), nil
}

// dupCloexec dups c's descriptor with fcntl(F_DUPFD_CLOEXEC).
func dupCloexec(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	return nfd, nil
}

// FromFile turns an inherited socket back into a listener. The listener
// holds its own dup; f can be closed after.
func FromFile(f *os.File) (net.Listener, error) {
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("netio: listener from inherited fd %d: %w", f.Fd(), err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// The master owns the socket file; a worker exiting must not unlink it.
		ul.SetUnlinkOnClose(false)
	}
	return ln, nil
}

// SetTCPUserTimeout sets TCP_USER_TIMEOUT on c's socket, under TLS too,
// on either driver: the kernel gives up on the connection when sent data
// stays unacknowledged, or queued data cannot go out to a zero window, for
// d (at most a C int of milliseconds, about 24 days). Other sockets (Unix)
// are left alone.
func SetTCPUserTimeout(c net.Conn, d time.Duration) error {
	_, err := withTCPFD(c, func(fd int) error { return setUserTimeout(fd, d) })
	return err
}

// withTCPFD runs f on the descriptor of c's socket if it is TCP, under TLS
// too, on either driver. tcp is false (and f not run) for other conns.
func withTCPFD(c net.Conn, f func(fd int) error) (tcp bool, err error) {
	return withSockFD(c, "tcp", f)
}

// withSockFD runs f on the descriptor of c's socket if it is of kind
// ("tcp" or "unix"), under TLS too, on either driver; ok says whether it
// is.
func withSockFD(c net.Conn, kind string, f func(fd int) error) (ok bool, err error) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	var sc syscall.Conn
	switch x := c.(type) {
	case *net.TCPConn:
		if kind != "tcp" {
			return false, nil
		}
		sc = x
	case *net.UnixConn:
		if kind != "unix" {
			return false, nil
		}
		sc = x
	case interface {
		controlNet(string, func(fd int) error) (bool, error)
	}: // io_uring conns
		return x.controlNet(kind, f)
	default:
		return false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true, err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return true, err
	}
	return true, ferr
}

// UnreadSent returns how many bytes written to c's unix socket its peer
// has not read yet (SIOCOUTQ): a unix socket keeps no count of bytes read,
// but a peer that does not read leaves this where it was. ok is false for
// a conn that is not a unix socket, or when the kernel does not tell.
func UnreadSent(c net.Conn) (n int, ok bool) {
	isUnix, err := withSockFD(c, "unix", func(fd int) error {
		var err error
		n, err = unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		return err
	})
	return n, isUnix && err == nil
}

// BytesAcked returns how many bytes of c's stream its TCP peer has
// acknowledged (TCP_INFO's tcpi_bytes_acked): a writer blocked on a slow
// reader moves it while its own call reports nothing yet. ok is false for
// a conn that is not TCP, or when the kernel does not tell.
func BytesAcked(c net.Conn) (n uint64, ok bool) {
	info, ok := tcpInfo(c)
	if !ok {
		return 0, false
	}
	return info.Bytes_acked, true
}

// BytesReceived returns how many bytes of its peer's stream c's socket has
// received (TCP_INFO's tcpi_bytes_received), read or not: traffic that
// arrived while a relay's call has not reported it yet. ok is as for
// BytesAcked.
func BytesReceived(c net.Conn) (n uint64, ok bool) {
	info, ok := tcpInfo(c)
	if !ok {
		return 0, false
	}
	return info.Bytes_received, true
}

// tcpInfo reads TCP_INFO of c's socket (see withTCPFD).
func tcpInfo(c net.Conn) (*unix.TCPInfo, bool) {
	var info *unix.TCPInfo
	tcp, err := withTCPFD(c, func(fd int) error {
		var err error
		info, err = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		return err
	})
	return info, tcp && err == nil
}

func setUserTimeout(fd int, d time.Duration) error {
	ms := int(min(d/time.Millisecond, math.MaxInt32))
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}
