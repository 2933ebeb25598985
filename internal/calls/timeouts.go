package calls

import (
	"context"
	"net"
	"net/http"
	"time"
)

// AnswerTimeout is how long a server may take to start answering one request (its response headers, once the
// request and its body are sent), to connect, and to finish a TLS handshake. A server that never answers then
// fails the call instead of holding it, and the apply lock with it, forever. Long transfers are not cut: the
// bound ends with the first byte of the answer.
const AnswerTimeout = time.Minute

// Bound sets tr's timeouts for connecting, the TLS handshake and the answer's headers to answer
// (AnswerTimeout when 0), and returns it.
func Bound(tr *http.Transport, answer time.Duration) *http.Transport {
	if answer <= 0 {
		answer = AnswerTimeout
	}
	tr.ResponseHeaderTimeout = answer
	tr.TLSHandshakeTimeout = answer
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, answer)
		defer cancel()
		return dial(ctx, network, addr)
	}
	return tr
}
