package ingress

import (
	"errors"
	"net/http"
	"regexp"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/ledger"
)

// UserRequest is the body of POST /v1/users.
type UserRequest struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
	Country  string `json:"country,omitempty"`
	KYCLevel int    `json:"kyc_level"`
}

// User is the API's view of a user.
type User struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
	Country  string `json:"country,omitempty"`
	KYCLevel int    `json:"kyc_level"`
	Status   string `json:"status"`
}

var (
	emailPattern   = regexp.MustCompile(`^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]+$`)
	countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)
)

func (req UserRequest) validate() *problem.Problem {
	var errs []problem.FieldError
	add := func(field, code, msg string) {
		errs = append(errs, problem.FieldError{Field: field, Code: code, Message: msg})
	}
	switch req.Type {
	case "customer", "merchant", "agent":
	case "":
		add("type", "required", "type is required")
	default:
		add("type", "unknown_type", "type must be customer, merchant or agent")
	}
	if req.Name == "" {
		add("name", "required", "name is required")
	} else if len(req.Name) > 200 {
		add("name", "too_long", "name is at most 200 characters")
	}
	if req.Phone != "" && !phonePattern.MatchString(req.Phone) {
		add("phone", "invalid_phone", "phone must be in E.164 form such as +84901234567")
	}
	if req.Email != "" && !emailPattern.MatchString(req.Email) {
		add("email", "invalid_email", "email is not an address")
	}
	if req.Country != "" && !countryPattern.MatchString(req.Country) {
		add("country", "invalid_country", "country is an ISO 3166-1 alpha-2 code such as VN")
	}
	if req.KYCLevel < 0 || req.KYCLevel > 3 {
		add("kyc_level", "out_of_range", "kyc_level is 0 to 3")
	}
	if len(errs) > 0 {
		return problem.New(http.StatusUnprocessableEntity, "invalid_user", "the user is not valid").With(errs...)
	}
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req UserRequest
	if !readStrict(w, r, &req) {
		return
	}
	if p := req.validate(); p != nil {
		problem.Write(w, p)
		return
	}
	u, err := s.ledger.CreateUser(r.Context(), ledger.User{Kind: ledger.UserKind(req.Type), DisplayName: req.Name, KYCLevel: req.KYCLevel})
	if err != nil {
		s.unavailable(w, "creating user", err)
		return
	}
	_, err = s.pool.Exec(r.Context(),
		`INSERT INTO user_profiles (user_id, name, phone, email, country, channel_key) VALUES ($1, $2, nullif($3, ''), nullif($4, ''), nullif($5, ''), $6)`,
		u.ID, req.Name, req.Phone, req.Email, req.Country, channelFrom(r.Context()).KeyID)
	if err != nil {
		s.unavailable(w, "creating user profile", err)
		return
	}
	writeJSON(w, http.StatusCreated, User{ID: userID(u.ID), Type: string(u.Kind), Name: req.Name, Phone: req.Phone,
		Email: req.Email, Country: req.Country, KYCLevel: u.KYCLevel, Status: u.Status})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	raw := chi.URLParam(r, "id")
	id, ok := parseUserID(raw)
	if !ok {
		problem.Write(w, problem.New(http.StatusNotFound, "user_not_found", "no user "+raw))
		return
	}
	u, err := s.ledger.GetUser(r.Context(), id)
	if errors.Is(err, ledger.ErrNotFound) {
		problem.Write(w, problem.New(http.StatusNotFound, "user_not_found", "no user "+raw))
		return
	}
	if err != nil {
		s.unavailable(w, "reading user", err)
		return
	}
	out := User{ID: raw, Type: string(u.Kind), Name: u.DisplayName, KYCLevel: u.KYCLevel, Status: u.Status}
	var phone, email, country *string
	err = s.pool.QueryRow(r.Context(), `SELECT name, phone, email, country FROM user_profiles WHERE user_id = $1`, id).
		Scan(&out.Name, &phone, &email, &country)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		s.unavailable(w, "reading user profile", err)
		return
	}
	out.Phone, out.Email, out.Country = deref(phone), deref(email), deref(country)
	writeJSON(w, http.StatusOK, out)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
