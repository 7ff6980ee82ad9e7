package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// security is what GOCOMPAT_SECURITY holds, as JSON: the listener's TLS files and SASL login.
// Unset (every scenario's existing use) means PLAINTEXT, so only the callers that need it set it:
//
//	{"tls": {"ca": "ca.pem", "cert": "client.pem", "key": "client.key"},
//	 "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "p"}}
type security struct {
	TLS *struct {
		CA   string `json:"ca"`
		Cert string `json:"cert"`
		Key  string `json:"key"`
	} `json:"tls"`
	SASL *struct {
		Mechanism string `json:"mechanism"`
		Username  string `json:"username"`
		Password  string `json:"password"`
	} `json:"sasl"`
}

// franzSecurity turns GOCOMPAT_SECURITY into franz-go options (none when it is unset).
func franzSecurity() ([]kgo.Opt, error) {
	raw := os.Getenv("GOCOMPAT_SECURITY")
	if raw == "" {
		return nil, nil
	}
	var sec security
	if err := json.Unmarshal([]byte(raw), &sec); err != nil {
		return nil, fmt.Errorf("GOCOMPAT_SECURITY: %w", err)
	}
	opts := []kgo.Opt{}
	if sec.TLS != nil {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if sec.TLS.CA != "" {
			pem, err := os.ReadFile(sec.TLS.CA)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificate in %s", sec.TLS.CA)
			}
		}
		if sec.TLS.Cert != "" {
			pair, err := tls.LoadX509KeyPair(sec.TLS.Cert, sec.TLS.Key)
			if err != nil {
				return nil, err
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		// franz-go sets ServerName from each broker's host, so the broker's SANs are checked.
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if s := sec.SASL; s != nil {
		switch strings.ToUpper(s.Mechanism) {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()))
		default:
			return nil, fmt.Errorf("unknown SASL mechanism %q", s.Mechanism)
		}
	}
	return opts, nil
}
