package rawsock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns the raw I/O of the server side of a loopback TCP
// connection, that side's conn, and the client side.
func pair(t *testing.T) (*Socket, *net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	s := New(server)
	if s == nil {
		t.Fatal("New returned nil for a *net.TCPConn")
	}
	return s, server.(*net.TCPConn), client.(*net.TCPConn)
}

func TestNewOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if New(a) != nil {
		t.Fatal("New of a net.Pipe conn is not nil")
	}
}

// TestBothWays moves 2 MiB each way at once through 64 KiB socket
// buffers, the peer reading slowly at first, so that writes wait for room
// (EAGAIN) and reads for input.
func TestBothWays(t *testing.T) {
	s, server, client := pair(t)
	server.SetWriteBuffer(64 << 10)
	client.SetReadBuffer(64 << 10)
	const size = 2 << 20
	out := make([]byte, size)
	in := make([]byte, size)
	rand.Read(out)
	rand.Read(in)

	var wg sync.WaitGroup
	var gotByPeer, gotBySocket []byte
	var errs [4]error
	wg.Add(4)
	go func() { // the socket writes out
		defer wg.Done()
		n, err := s.Write(out)
		if err == nil && n != size {
			err = io.ErrShortWrite
		}
		errs[0] = err
	}()
	go func() { // the peer reads it, slowly for a start
		defer wg.Done()
		time.Sleep(200 * time.Millisecond)
		gotByPeer, errs[1] = io.ReadAll(io.LimitReader(client, size))
	}()
	go func() { // the peer writes in
		defer wg.Done()
		_, errs[2] = client.Write(in)
	}()
	go func() { // the socket reads it, in small reads
		defer wg.Done()
		buf := make([]byte, 3000)
		for len(gotBySocket) < size {
			n, err := s.Read(buf)
			gotBySocket = append(gotBySocket, buf[:n]...)
			if err != nil {
				errs[3] = err
				return
			}
		}
	}()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if !bytes.Equal(gotByPeer, out) || !bytes.Equal(gotBySocket, in) {
		t.Fatal("bytes differ from those sent")
	}
}

// TestErrorsAsTCPConn: EOF, a read deadline, a write to a peer that reset,
// and a Read blocked when the conn is closed give the errors the conn's own
// Read and Write give.
func TestErrorsAsTCPConn(t *testing.T) {
	t.Run("eof", func(t *testing.T) {
		s, _, client := pair(t)
		client.Write([]byte("x"))
		client.Close()
		buf := make([]byte, 8)
		if n, err := s.Read(buf); n != 1 || err != nil {
			t.Fatalf("Read = %d, %v; want 1, nil", n, err)
		}
		if n, err := s.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("Read at the end = %d, %v; want 0, io.EOF", n, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		s, server, _ := pair(t)
		server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := s.Read(make([]byte, 8))
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "read" || !oe.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read past the deadline: %#v, want a read *net.OpError that is a timeout", err)
		}
		// As on the conn, moving the deadline makes the next Read wait.
		server.SetReadDeadline(time.Time{})
		done := make(chan error, 1)
		go func() { _, err := s.Read(make([]byte, 8)); done <- err }()
		select {
		case err := <-done:
			t.Fatalf("Read without a deadline returned: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		server.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read when the conn was closed: %v, want net.ErrClosed", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		s, _, client := pair(t)
		client.SetLinger(0)
		client.Close() // RST
		var err error
		for range 100 {
			if _, err = s.Write(make([]byte, 64<<10)); err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "write" || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			t.Fatalf("Write to a reset peer: %v, want a write *net.OpError with ECONNRESET or EPIPE", err)
		}
	})
}

// TestReadPooled: a pooled read lends a buffer holding what arrived, and
// none at the end of the stream, where it returns io.EOF as Read does.
func TestReadPooled(t *testing.T) {
	s, _, client := pair(t)
	pool := &sync.Pool{New: func() any { b := make([]byte, 64); return &b }}
	client.Write([]byte("hello"))
	client.Close()
	bp, n, err := s.ReadPooled(pool)
	if bp == nil || err != nil || string((*bp)[:n]) != "hello" {
		t.Fatalf("ReadPooled = %v, %d, %v; want the buffer holding \"hello\"", bp, n, err)
	}
	pool.Put(bp)
	if bp, n, err := s.ReadPooled(pool); bp != nil || n != 0 || err != io.EOF {
		t.Fatalf("ReadPooled at the end = %v, %d, %v; want nil, 0, io.EOF", bp, n, err)
	}
}
