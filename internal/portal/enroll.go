package portal

import (
	"net/http"
	"strconv"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// NotRegisteredData is what the not-registered page shows, where the site
// offers no self-enrollment.
type NotRegisteredData struct {
	Holder  string // display name from the card
	EDIPI   string // the card's DoD ID, which an administrator needs
	Subject string
	Issuer  string
	Contact string // the site's contact option
	// HasAccount is true when an account with this DoD ID exists but the
	// card could not be linked to it automatically.
	HasAccount bool
}

// Serve answers a request under PathEnroll for the admitted card: the
// choice, the enrollment steps, registering the card, the password reset.
// It writes the response itself and returns a non-nil error only for an
// internal failure (rendering, hashing), in which case it has written
// nothing and the caller answers 500. Those errors never carry the
// person's secrets. A form the account database could not serve is
// answered here: 503 and the form again (see unavailable).
//
// Between enrollment steps the state travels in a hidden form field
// (sealed by selfservice), and each step's POST answers with the next
// step's form directly: a GET of a later step has no state and restarts at
// identity validation.
//
// A hash the hasher turns away (too many waiting) is answered with the
// "try again in a moment" page (503).
func (p *Pages) Serve(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	return p.orBusy(w, r, card, p.serve(w, r, card, csrf))
}

func (p *Pages) serve(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	if err := checkCard(card); err != nil {
		return err
	}
	r = withRequest(r)
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	path := trimPath(r)
	if path == PathEnroll {
		if r.Method == http.MethodPost {
			return MethodNotAllowed(w, r, "GET, HEAD")
		}
		return p.render(w, http.StatusOK, "choice", p.base(card, csrf))
	}
	switch path {
	case PathNew, PathProfile, PathQuestions:
	case PathLink:
		return p.serveLink(w, r, card, csrf)
	case PathReset:
		return p.serveReset(w, r, card, csrf)
	default:
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "There is no enrollment page at this address.", Contact: p.cfg.Contact})
	}
	if r.Method != http.MethodPost {
		if path == PathNew {
			return p.showIdentity(w, r, card, csrf)
		}
		// Later steps only exist as answers to the previous step's POST.
		return redirect(w, r, PathNew)
	}
	if ok, err := p.readForm(w, r, csrf, "Go back to the enrollment page, reload it and try again."); !ok {
		return err
	}
	switch path {
	case PathNew:
		return p.postIdentity(w, r, card, csrf)
	case PathProfile:
		return p.postProfile(w, r, card, csrf)
	default:
		return p.postQuestions(w, r, card, csrf)
	}
}

// restart sends the person back to identity validation because the sealed
// state is missing, expired, altered, made for another card or for another
// step.
func restart(w http.ResponseWriter, r *http.Request) error {
	return redirect(w, r, PathNew+"?restart=1")
}

// replayed answers a step whose sealed state was used already (the form
// sent twice, or a copy of it): nothing was done; start again.
func (p *Pages) replayed(w http.ResponseWriter, r *http.Request) error {
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusConflict, Code: "form_already_used",
		Title: "This form was already sent", Detail: "Each step of the registration can be sent once, and this one was already sent (perhaps twice, or from another tab). Nothing was done with this copy.",
		Steps: []string{"Start the registration again from the beginning."}, Contact: p.cfg.Contact,
		Links: []ui.Link{{Text: "Start again", Href: PathNew}}})
}

type existsPage struct {
	pageBase
	// Registered: this card is registered to an account (else the DoD ID
	// has one).
	Registered bool
}

// exists answers a card that has an account, or whose DoD ID has one.
func (p *Pages) exists(w http.ResponseWriter, card *cacid.Identity, csrf CSRF, registered bool) error {
	return p.render(w, http.StatusConflict, "exists", existsPage{pageBase: p.base(card, csrf), Registered: registered})
}

// refusedStep answers the outcomes the hashing steps share: a replayed
// state, a registered card, the guard's refusals, the database failing
// (with form, the step's form again). ok is false when o is none of them.
func (p *Pages) refusedStep(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF, o selfservice.Outcome, form formPage) (bool, error) {
	switch {
	case o.Status == selfservice.Restart:
		return true, restart(w, r)
	case o.Status == selfservice.Replayed:
		return true, p.replayed(w, r)
	case o.Status == selfservice.Refused && o.Reason == "registered":
		return true, p.exists(w, card, csrf, true)
	case o.Status == selfservice.Limited:
		return true, p.tooMany(w, r, "Too many registration forms were sent for this card or from your network.",
			"Wait 15 minutes before trying again.")
	case o.Status == selfservice.Unavailable:
		return true, p.unavailable(w, r, "No account was created.", form)
	}
	return false, nil
}

// ---- step 2: identity validation ----

type identityPage struct {
	pageBase
	IDType       string // "ssn" or "fin": which radio is checked
	AskPEBD      bool
	PEBDOptional bool // asked "if you have one": an empty field is sent as none
	Restarted    bool
}

func (p *Pages) showIdentity(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	form, o, err := p.svc.IdentityForm(r.Context(), card, r.Method == http.MethodGet)
	if err != nil {
		return err
	}
	if o.Status == selfservice.RosterUnavailable {
		return p.rosterUnavailable(w, r)
	}
	if form.Sponsor {
		// A non-DoD credential the roster holds no record of.
		return p.sponsor(w, r, card, csrf)
	}
	return p.render(w, http.StatusOK, "identity", identityPage{
		pageBase: p.base(card, csrf), IDType: "ssn", AskPEBD: form.AskPEBD, PEBDOptional: form.PEBDOptional,
		Restarted: r.URL.Query().Get("restart") != "",
	})
}

// sponsor starts a non-DoD credential's enrollment: no personnel record
// to check it against, so the account waits for an administrator's
// approval (approval mode), or the site does not enroll such cards.
func (p *Pages) sponsor(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	res, err := p.svc.Sponsor(r.Context(), card)
	if err != nil {
		return err
	}
	return p.sponsored(w, r, card, csrf, res)
}

// sponsored shows the outcome of a sponsorship: the profile form, or why
// there is none.
func (p *Pages) sponsored(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF, res selfservice.IdentityResult) error {
	switch {
	case res.Status == selfservice.Refused && res.Reason == "sponsor_required":
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "sponsor_required",
			Title: "Ask for an account",
			Detail: "This site checks new accounts against DoD personnel records, which do not cover your " +
				selfservice.CredentialTitle(card) + ". An administrator must create your account or sponsor your registration.",
			Steps:   []string{"Contact the site's administrators and give them the certificate details your browser shows for this " + selfservice.CredentialTitle(card) + "."},
			Contact: p.cfg.Contact})
	case res.Status == selfservice.Refused:
		return p.exists(w, card, csrf, true)
	case res.Status == selfservice.Unavailable:
		return p.unavailable(w, r, "No account was created.", func(status int, errs selfservice.FieldErrors) error {
			page := p.base(card, csrf)
			page.Errors = errs
			return p.render(w, status, "identity", identityPage{pageBase: page})
		})
	}
	return p.profileForm(w, http.StatusOK, card, csrf, res.Next, selfservice.FieldErrors{})
}

func (p *Pages) rosterUnavailable(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Retry-After", "300")
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusServiceUnavailable, Code: "roster_unavailable",
		Title: "Try again later", Detail: "The personnel records that confirm who you are cannot be reached right now. No account was created.",
		Steps: []string{"Wait a few minutes and start the registration again."}, Contact: p.cfg.Contact, Retry: true})
}

type ineligiblePage struct {
	pageBase
	Yours, Eligible []string
}

func (p *Pages) postIdentity(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	form := r.PostForm
	res, err := p.svc.CheckIdentity(r.Context(), card, selfservice.IdentityInput{
		IDType: form.Get("idtype"), SSN: form.Get("ssn"), FIN: form.Get("fin"), DOB: form.Get("dob"), PEBD: form.Get("pebd"),
		Address: clientAddress(r),
	})
	if err != nil {
		return err
	}
	page := identityPage{pageBase: p.base(card, csrf), AskPEBD: res.Form.AskPEBD, PEBDOptional: res.Form.PEBDOptional, IDType: res.IDType}
	if res.Status == selfservice.Refused && res.Reason == "sponsor_required" {
		// A non-DoD credential without a roster record, on a site that
		// sponsors nobody.
		return p.sponsored(w, r, card, csrf, res)
	}
	switch res.Status {
	case selfservice.Refused: // registered: no state for a card with an account
		return p.exists(w, card, csrf, true)
	case selfservice.Limited:
		if res.Reason == selfservice.ReasonAddressLimited {
			return AddressLimited(w, r, p.cfg.Contact)
		}
		return p.tooMany(w, r, "The information entered for this card did not match the personnel records too many times.",
			"Wait 15 minutes before trying again.", "Check your information, or contact the help desk.")
	case selfservice.Unavailable:
		// The identity facts are not shown again: they are secrets.
		return p.unavailable(w, r, "No account was created.", func(status int, errs selfservice.FieldErrors) error {
			page.Errors = errs
			return p.render(w, status, "identity", page)
		})
	case selfservice.RosterUnavailable:
		return p.rosterUnavailable(w, r)
	case selfservice.Invalid, selfservice.Wrong:
		page.Errors = res.Errors
		return p.render(w, http.StatusUnprocessableEntity, "identity", page)
	}
	if res.Ineligible {
		return p.render(w, http.StatusForbidden, "ineligible", ineligiblePage{pageBase: p.base(card, csrf), Yours: res.Yours, Eligible: res.Eligible})
	}
	return p.profileForm(w, http.StatusOK, card, csrf, res.Next, selfservice.FieldErrors{})
}

// ---- step 3: profile and password ----

type profilePage struct {
	pageBase
	Rostered       bool // the roster confirmed who the holder is (else sponsored)
	Name           string
	Categories     []string
	Profile        selfservice.Profile
	Organizations  []string
	Locations      []string
	RequireAddress bool
	RequirePhone   bool
	Rules          []string
}

func (p *Pages) profileForm(w http.ResponseWriter, status int, card *cacid.Identity, csrf CSRF, f selfservice.ProfileForm, errs selfservice.FieldErrors) error {
	page := profilePage{
		pageBase: p.base(card, csrf), Name: f.Name, Categories: f.Categories, Profile: f.Profile, Rostered: f.Rostered,
		Organizations: p.cfg.Organizations, Locations: p.cfg.Locations,
		RequireAddress: p.cfg.RequireAddress, RequirePhone: p.cfg.RequirePhone, Rules: p.cfg.Password.Rules(),
	}
	page.State, page.Errors = f.State, errs
	return p.render(w, status, "profile", page)
}

func (p *Pages) postProfile(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	form := r.PostForm
	res, err := p.svc.SetProfile(r.Context(), card, selfservice.ProfileInput{
		State: form.Get("state"),
		Profile: selfservice.Profile{Email: form.Get("email"), Organization: form.Get("organization"), Location: form.Get("location"),
			Address: form.Get("address"), Phone: form.Get("phone")},
		Password: form.Get("password"), Confirm: form.Get("confirm"),
		Address: clientAddress(r),
	})
	if err != nil {
		return err
	}
	again := func(status int, errs selfservice.FieldErrors) error {
		return p.profileForm(w, status, card, csrf, res.Form, errs)
	}
	if done, err := p.refusedStep(w, r, card, csrf, res.Outcome, again); done {
		return err
	}
	switch {
	case res.Status == selfservice.Invalid:
		return again(http.StatusUnprocessableEntity, res.Errors)
	}
	return p.questionsForm(w, http.StatusOK, card, csrf, res.Next, selfservice.FieldErrors{})
}

// ---- step 4: security questions ----

type questionSlot struct {
	N        int // 1-based
	Selected string
}

type questionsPage struct {
	pageBase
	Slots     []questionSlot
	Questions []credential.Question
}

func slots(chosen [credential.QuestionsRequired]string) []questionSlot {
	var out []questionSlot
	for i, id := range chosen {
		out = append(out, questionSlot{N: i + 1, Selected: id})
	}
	return out
}

func (p *Pages) questionsForm(w http.ResponseWriter, status int, card *cacid.Identity, csrf CSRF, f selfservice.QuestionsForm, errs selfservice.FieldErrors) error {
	page := questionsPage{pageBase: p.base(card, csrf), Questions: credential.Questions(), Slots: slots(f.Chosen)}
	page.State, page.Errors = f.State, errs
	return p.render(w, status, "questions", page)
}

// readPicks reads the three question picks of a questions form.
func readPicks(r *http.Request) [credential.QuestionsRequired]credential.AnswerPick {
	var picks [credential.QuestionsRequired]credential.AnswerPick
	for i := range picks {
		n := strconv.Itoa(i + 1)
		picks[i] = credential.AnswerPick{QuestionID: r.PostForm.Get("question-" + n), Answer: r.PostForm.Get("answer-" + n), Confirm: r.PostForm.Get("confirm-" + n)}
	}
	return picks
}

type completePage struct {
	pageBase
	Account *store.Account
	Name    string
	Pending bool
	Card    *cacid.Identity
	Expires string
}

func (p *Pages) postQuestions(w http.ResponseWriter, r *http.Request, card *cacid.Identity, csrf CSRF) error {
	res, err := p.svc.Complete(r.Context(), card, selfservice.QuestionsInput{State: r.PostForm.Get("state"), Picks: readPicks(r),
		Address: clientAddress(r)})
	if err != nil {
		return err
	}
	again := func(status int, errs selfservice.FieldErrors) error {
		return p.questionsForm(w, status, card, csrf, res.Form, errs)
	}
	if done, err := p.refusedStep(w, r, card, csrf, res.Outcome, again); done {
		return err
	}
	switch {
	case res.Status == selfservice.Invalid:
		return again(http.StatusUnprocessableEntity, res.Errors)
	case res.Status == selfservice.Refused && res.Reason == "no_username":
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusUnprocessableEntity, Code: "no_username",
			Title: "Your account cannot be created here", Detail: "A username cannot be made from your name as the records hold it.",
			Steps: []string{"Contact the site's administrators, who can create your account."}, Contact: p.cfg.Contact})
	case res.Status == selfservice.Refused:
		// edipi_taken, card_taken
		return p.exists(w, card, csrf, res.Reason == "card_taken")
	}
	return p.render(w, http.StatusOK, "complete", completePage{pageBase: p.base(card, csrf), Account: res.Account,
		Name: res.Name, Pending: res.Account.Status == store.StatusPending, Card: card,
		Expires: card.NotAfter.UTC().Format("2006-01-02")})
}
