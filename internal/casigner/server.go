package casigner

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/httpserve"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Server signs verification certificates with Keys (see the package comment).
type Server struct {
	Keys []crypto.Signer
	Log  *slog.Logger
}

// Handler serves the API of the package comment.
func (s *Server) Handler() http.Handler {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+PathHealth, httpserve.Health(func() (bool, string) {
		if len(s.Keys) == 0 {
			return false, "unhealthy: no root key"
		}
		return true, fmt.Sprintf("ok: %d root key(s)", len(s.Keys))
	}))
	mux.HandleFunc("GET "+PathKeys, func(w http.ResponseWriter, _ *http.Request) {
		var doc keysDoc
		for _, k := range s.Keys {
			der, err := x509.MarshalPKIXPublicKey(k.Public())
			if err != nil {
				reply(w, http.StatusInternalServerError, errorDoc{err.Error()})
				return
			}
			doc.Keys = append(doc.Keys, der)
		}
		reply(w, http.StatusOK, doc)
	})
	mux.HandleFunc("POST "+PathProof, func(w http.ResponseWriter, r *http.Request) {
		var req proofRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			reply(w, http.StatusBadRequest, errorDoc{"request: " + err.Error()})
			return
		}
		root, err := parseRoot(req.Root)
		if err == nil {
			err = CheckToken(req.Token)
		}
		if err != nil {
			reply(w, http.StatusBadRequest, errorDoc{err.Error()})
			return
		}
		key := KeyFor(root, s.Keys)
		if key == nil {
			reply(w, http.StatusNotFound, errorDoc{fmt.Sprintf("%v: %q", ErrNoKey, root.Subject.String())})
			return
		}
		cert, err := ziti.VerificationCert(req.Token, root, key)
		if err != nil {
			reply(w, http.StatusInternalServerError, errorDoc{err.Error()})
			return
		}
		log.Info("signed an OpenZiti CA verification certificate", "root", root.Subject.String())
		reply(w, http.StatusOK, proofResponse{Certificate: cert})
	})
	return mux
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve serves h on the unix socket at path (mode 0600, replacing a stale socket file) until ctx ends.
func Serve(ctx context.Context, path string, h http.Handler) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("SPIRE CA signer socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("SPIRE CA signer socket %s: remove the stale one: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("SPIRE CA signer socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("SPIRE CA signer socket %s: %w", path, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("SPIRE CA signer socket %s: %w", path, err)
	}
	return nil
}
