package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/oidcop"
	"github.com/cacgate/cacgate/internal/store"
)

// OIDCStore is where relying parties registered through the admin API
// live (the store's oidc_clients table).
type OIDCStore interface {
	PutOIDCClient(ctx context.Context, id string, config []byte) error
	OIDCClient(ctx context.Context, id string) (*store.OIDCClientRecord, error)
	ListOIDCClients(ctx context.Context) ([]store.OIDCClientRecord, error)
	DeleteOIDCClient(ctx context.Context, id string) error
}

var _ OIDCStore = (*store.SQLStore)(nil)

// Audit events of client management.
const (
	EventOIDCClientSaved   = "admin.oidc_client.saved"
	EventOIDCClientDeleted = "admin.oidc_client.deleted"
)

// OIDCClientRequest registers or replaces a relying party: the provider's
// client fields (secret_hash, never a secret, is what is stored), and
// generate_secret to have the server make a secret, shown once.
type OIDCClientRequest struct {
	oidcop.ClientConfig
	GenerateSecret bool `json:"generate_secret,omitempty"`
}

// OIDCClient is a registered relying party as the admin API shows it: its
// configuration without the secret's hash.
type OIDCClient struct {
	oidcop.ClientConfig
	HasSecret bool      `json:"has_secret"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	// Secret is the generated secret, in the answer to the request that
	// generated it only.
	Secret string `json:"secret,omitempty"`
}

func oidcClientOf(rec store.OIDCClientRecord) (OIDCClient, error) {
	cfg, err := oidcop.DecodeClient(rec.Config)
	if err != nil {
		return OIDCClient{}, err
	}
	out := OIDCClient{ClientConfig: cfg, HasSecret: cfg.SecretHash != "", Created: rec.Created, Updated: rec.Updated}
	out.SecretHash = ""
	return out, nil
}

func (s *Service) oidcStore() (OIDCStore, error) {
	if s.OIDC == nil {
		return nil, Errorf(http.StatusNotImplemented, "this account store cannot hold OpenID Connect clients")
	}
	return s.OIDC, nil
}

// OIDCClients lists the registered relying parties.
func (s *Service) OIDCClients(ctx context.Context) ([]OIDCClient, error) {
	st, err := s.oidcStore()
	if err != nil {
		return nil, err
	}
	recs, err := st.ListOIDCClients(ctx)
	if err != nil {
		return nil, s.storeError(err, "")
	}
	out := make([]OIDCClient, 0, len(recs))
	for _, rec := range recs {
		c, err := oidcClientOf(rec)
		if err != nil {
			s.logger().Error("unreadable OpenID Connect client in the store", zap.String("client_id", rec.ID), zap.Error(err))
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// PutOIDCClient registers a relying party, or replaces one of the same
// ID. A client the server's configuration holds cannot be registered
// (Configured). A secret in clear is refused: generate_secret makes one
// (shown once in the answer), or secret_hash gives its hash.
func (s *Service) PutOIDCClient(ctx context.Context, who Actor, req OIDCClientRequest) (OIDCClient, error) {
	st, err := s.oidcStore()
	if err != nil {
		return OIDCClient{}, err
	}
	fail := func(err error) (OIDCClient, error) {
		return OIDCClient{}, s.fail(who, EventOIDCClientSaved, err, zap.String("client_id", clip(req.ID)))
	}
	if s.OIDCConfigured != nil && s.OIDCConfigured(req.ID) {
		return fail(conflict("client %q is configured in the server's config; change it there", req.ID))
	}
	cfg := req.ClientConfig
	var secret string
	switch {
	case cfg.Secret != "":
		return fail(BadRequest(errors.New("send no secret in clear: set generate_secret, or secret_hash (sha256:<hex>)")))
	case req.GenerateSecret && cfg.SecretHash != "":
		return fail(BadRequest(errors.New("set generate_secret or secret_hash, not both")))
	case req.GenerateSecret:
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return OIDCClient{}, err
		}
		secret = base64.RawURLEncoding.EncodeToString(b)
		cfg.SecretHash = oidcop.HashSecret(secret)
	}
	compiled, err := cfg.Compile()
	if err != nil {
		return fail(BadRequest(err))
	}
	stored := compiled.Config()
	body, err := json.Marshal(stored)
	if err != nil {
		return OIDCClient{}, err
	}
	if err := st.PutOIDCClient(ctx, stored.ID, body); err != nil {
		return fail(s.storeError(err, ""))
	}
	s.record(who, EventOIDCClientSaved, "success", zap.String("client_id", stored.ID), zap.String("auth_method", stored.AuthMethod),
		zap.Strings("redirect_uris", stored.RedirectURIs), zap.Bool("secret_generated", secret != ""))
	rec, err := st.OIDCClient(ctx, stored.ID)
	if err != nil {
		return OIDCClient{}, s.storeError(err, "")
	}
	out, err := oidcClientOf(*rec)
	if err != nil {
		return OIDCClient{}, err
	}
	out.Secret = secret
	return out, nil
}

// DeleteOIDCClient removes a registered relying party and its refresh
// tokens.
func (s *Service) DeleteOIDCClient(ctx context.Context, who Actor, id string) error {
	st, err := s.oidcStore()
	if err != nil {
		return err
	}
	if s.OIDCConfigured != nil && s.OIDCConfigured(id) {
		return s.fail(who, EventOIDCClientDeleted, conflict("client %q is configured in the server's config; change it there", id), zap.String("client_id", clip(id)))
	}
	if err := st.DeleteOIDCClient(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = notFound("no registered client %q", id)
		} else {
			err = s.storeError(err, "")
		}
		return s.fail(who, EventOIDCClientDeleted, err, zap.String("client_id", clip(id)))
	}
	s.record(who, EventOIDCClientDeleted, "success", zap.String("client_id", id))
	return nil
}

func clip(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}

func oidcClientPath(id string) string { return "/cacgate/oidc/clients/" + url.PathEscape(id) }

// OIDCClients implements Backend.
func (c *Client) OIDCClients(ctx context.Context) ([]OIDCClient, error) {
	var out []OIDCClient
	err := c.call(ctx, http.MethodGet, "/cacgate/oidc/clients", nil, "", &out)
	return out, err
}

// PutOIDCClient implements Backend.
func (c *Client) PutOIDCClient(ctx context.Context, _ Actor, req OIDCClientRequest) (OIDCClient, error) {
	var out OIDCClient
	err := c.call(ctx, http.MethodPut, oidcClientPath(req.ID), req, "", &out)
	return out, err
}

// DeleteOIDCClient implements Backend.
func (c *Client) DeleteOIDCClient(ctx context.Context, _ Actor, id string) error {
	return c.call(ctx, http.MethodDelete, oidcClientPath(id), nil, "", nil)
}
