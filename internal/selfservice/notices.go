package selfservice

import (
	"context"
	"errors"
	"slices"

	"github.com/cacgate/cacgate/internal/mail"
	"github.com/cacgate/cacgate/internal/store"
)

// MailPreferences is the store's side of the e-mail notice preferences
// (store.SQLStore has it).
type MailPreferences interface {
	SetMailOptOut(ctx context.Context, accountID int64, kinds []string) error
}

// NoticeChoice is one optional e-mail notice as the account page offers it.
type NoticeChoice struct {
	Kind, Label string
	On          bool
}

// NoticeChoices lists the optional notices and whether acct receives each
// (the password expiry warning only where passwords expire and acct has
// one).
func (s *Service) NoticeChoices(acct *store.Account) []NoticeChoice {
	var out []NoticeChoice
	for _, k := range mail.Kinds {
		if k.Kind == mail.KindPasswordExpiring && (s.cfg.PasswordMaxAge <= 0 || !acct.HasPassword) {
			continue
		}
		if k.Optional {
			out = append(out, NoticeChoice{Kind: k.Kind, Label: k.Label, On: !slices.Contains(acct.MailOptOut, k.Kind)})
		}
	}
	return out
}

// ErrNoPreferences: the account database cannot keep notice preferences.
var ErrNoPreferences = errors.New("notice preferences are not available")

// SetNotices keeps the optional notices acct is to receive: every optional
// kind not in receive is turned off (unknown kinds in receive are
// ignored; security notices cannot be turned off). Audited.
func (s *Service) SetNotices(ctx context.Context, acct *store.Account, receive []string) error {
	prefs, ok := s.deps.Accounts.(MailPreferences)
	if !ok {
		return ErrNoPreferences
	}
	var off []string
	for _, k := range mail.Kinds {
		if k.Optional && !slices.Contains(receive, k.Kind) {
			off = append(off, k.Kind)
		}
	}
	if err := prefs.SetMailOptOut(ctx, acct.ID, off); err != nil {
		s.deps.Audit(ctx, "notices.changed", "failure", map[string]string{"username": acct.Username, "reason": "unavailable"})
		return errors.Join(ErrUnavailable, err)
	}
	s.deps.Audit(ctx, "notices.changed", "success", map[string]string{"username": acct.Username})
	if s.deps.OnChange != nil {
		s.deps.OnChange()
	}
	return nil
}
