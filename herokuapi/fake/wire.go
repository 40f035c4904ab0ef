package fake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Error is an error answer as Heroku sends it: Status is the HTTP status, the rest is the JSON body. Scale returns
// one (wrapped) so that tests can tell a 404 from a 422 with errors.As.
type Error struct {
	Status  int    `json:"-"`
	ID      string `json:"id"`
	Message string `json:"message"`
	URL     string `json:"url"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.ID, e.Message) }

// Heroku's wording where it is known (HEROKU.md); the rest is in the same style.
func errNotAcceptable() *Error {
	return &Error{http.StatusNotAcceptable, "not_acceptable",
		"Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.",
		"https://devcenter.heroku.com/articles/platform-api-reference#clients"}
}

func errUnauthorized() *Error {
	return &Error{http.StatusUnauthorized, "unauthorized", "Invalid credentials provided.", ""}
}

func errRateLimit() *Error {
	return &Error{http.StatusTooManyRequests, "rate_limit",
		"Your account reached the API rate limit. Please wait a few minutes before making new requests.",
		"https://devcenter.heroku.com/articles/platform-api-reference#rate-limits"}
}

func errNoRoute() *Error {
	return &Error{http.StatusNotFound, "not_found",
		"The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` vs. `POST`), and did you specify your API version in the Accept header?",
		""}
}

func errNoApp() *Error {
	return &Error{http.StatusNotFound, "not_found", "Couldn't find that app.", ""}
}

func errNoFormation() *Error {
	return &Error{http.StatusNotFound, "not_found", "Couldn't find that formation.", ""}
}

func errNoAuthorization() *Error {
	return &Error{http.StatusNotFound, "not_found", "Couldn't find that OAuth authorization.", ""}
}

func errBadRequest(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...), ""}
}

func errInvalid(format string, args ...any) *Error {
	return &Error{http.StatusUnprocessableEntity, "invalid_params", fmt.Sprintf(format, args...), ""}
}

// errInjected is the answer to a request failed by Server.Fail: the id Heroku uses for the status where one is
// documented, a descriptive one for 5xx (whose ids are not confirmed).
func errInjected(status int) *Error {
	ids := map[int]string{
		400: "bad_request", 401: "unauthorized", 402: "delinquent", 403: "forbidden", 404: "not_found",
		406: "not_acceptable", 409: "conflict", 410: "gone", 416: "requested_range_not_satisfiable",
		422: "invalid_params", 429: "rate_limit", 500: "internal_server_error", 502: "bad_gateway",
		503: "service_unavailable", 504: "gateway_timeout",
	}
	id, ok := ids[status]
	if !ok {
		id = "error"
	}
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	return &Error{status, id, fmt.Sprintf("%s (injected by fakeheroku).", text), ""}
}

// timeJSON formats as Heroku does: RFC 3339, UTC, whole seconds ("2026-01-01T12:00:00Z").
type timeJSON time.Time

func (t timeJSON) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireTime(time.Time(t)).Format(time.RFC3339))
}

type formationJSON struct {
	App       App      `json:"app"`
	Command   string   `json:"command"`
	CreatedAt timeJSON `json:"created_at"`
	DynoSize  sizeJSON `json:"dyno_size"`
	ID        string   `json:"id"`
	Quantity  int      `json:"quantity"`
	Size      string   `json:"size"`
	Type      string   `json:"type"`
	UpdatedAt timeJSON `json:"updated_at"`
}

type sizeJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// MarshalJSON writes the formation object exactly as Heroku sends it, dyno_size and the deprecated size included.
func (f Formation) MarshalJSON() ([]byte, error) {
	return json.Marshal(formationJSON{
		App: f.App, Command: f.Command, CreatedAt: timeJSON(f.CreatedAt),
		DynoSize: sizeJSON{ID: sizeID(f.Size), Name: f.Size},
		ID:       f.ID, Quantity: f.Quantity, Size: f.Size, Type: f.Type, UpdatedAt: timeJSON(f.UpdatedAt),
	})
}

type accountJSON struct {
	AllowTracking           bool      `json:"allow_tracking"`
	Beta                    bool      `json:"beta"`
	CountryOfResidence      *string   `json:"country_of_residence"`
	CreatedAt               timeJSON  `json:"created_at"`
	DefaultOrganization     *App      `json:"default_organization"`
	DefaultTeam             *App      `json:"default_team"`
	DelinquentAt            *string   `json:"delinquent_at"`
	Email                   string    `json:"email"`
	Federated               bool      `json:"federated"`
	ID                      string    `json:"id"`
	IdentityProvider        *struct{} `json:"identity_provider"`
	LastLogin               timeJSON  `json:"last_login"`
	Name                    string    `json:"name"`
	SMSNumber               *string   `json:"sms_number"`
	SuspendedAt             *string   `json:"suspended_at"`
	TwoFactorAuthentication bool      `json:"two_factor_authentication"`
	UpdatedAt               timeJSON  `json:"updated_at"`
	Verified                bool      `json:"verified"`
}

type authorizationJSON struct {
	AccessToken struct {
		ExpiresIn *int   `json:"expires_in"`
		ID        string `json:"id"`
		Token     string `json:"token"` // left empty: the fake never echoes a secret
	} `json:"access_token"`
	Client       *struct{} `json:"client"`
	CreatedAt    timeJSON  `json:"created_at"`
	Description  string    `json:"description"`
	Grant        *struct{} `json:"grant"`
	ID           string    `json:"id"`
	RefreshToken *struct{} `json:"refresh_token"`
	Scope        []string  `json:"scope"`
	Session      *struct{} `json:"session"`
	UpdatedAt    timeJSON  `json:"updated_at"`
	User         struct {
		Email    string  `json:"email"`
		FullName *string `json:"full_name"`
		ID       string  `json:"id"`
	} `json:"user"`
}

type rateLimitJSON struct {
	Remaining int `json:"remaining"`
}
