package localkafka

import (
	"context"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker is the embedded broker: the kfake cluster and the listener it serves, which
// takes connections both from the network and from clients in this process.
type Broker struct {
	*kfake.Cluster
	ln *memListener
}

// Dialer connects a client in this process to the broker through memory (net.Pipe)
// rather than loopback TCP, and any other address as kgo would. The Kafka protocol is
// the same either way. Loopback costs each request and each answer a system call on
// both sides; at 2,500 payments/s the process's in-process clients made about 1.1 of
// those a payment, a sixth of its writes, and in 30-s closed-loop pairs the process
// spent 4–14 % less CPU a payment without them.
func (b *Broker) Dialer() kgo.Opt {
	return kgo.Dialer(b.ln.dial)
}

// InMemoryConns counts the connections made through Dialer.
func (b *Broker) InMemoryConns() int64 {
	return b.ln.inMemory.Load()
}

// memListener hands kfake the connections of its TCP listener and those made through
// dial, one Accept at a time.
type memListener struct {
	net.Listener
	conns    chan net.Conn
	closed   chan struct{}
	once     sync.Once
	inMemory atomic.Int64
}

func newMemListener(ln net.Listener) *memListener {
	l := &memListener{Listener: ln, conns: make(chan net.Conn), closed: make(chan struct{})}
	go l.acceptTCP()
	return l
}

func (l *memListener) acceptTCP() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.Close()
			return
		}
		select {
		case l.conns <- c:
		case <-l.closed:
			c.Close()
			return
		}
	}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
	})
	return err
}

// dialTimeout is kgo's own default.
const dialTimeout = 10 * time.Second

func (l *memListener) dial(ctx context.Context, network, host string) (net.Conn, error) {
	if host != l.Addr().String() {
		d := net.Dialer{Timeout: dialTimeout}
		return d.DialContext(ctx, network, host)
	}
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		l.inMemory.Add(1)
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// As a closed TCP port answers: kgo gives up on a refused dial, where it retries
	// net.ErrClosed until its retry timeout (30 s for a group client's Close).
	return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}
