package wasim

import (
	"errors"
	"fmt"
	"strconv"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Account is a WhatsApp user on the simulated network.
type Account struct {
	Phone    string    // phone number, digits only
	LID      string    // the user's LID (user part)
	PushName string    // the name shown to others
	JID      types.JID // Phone@s.whatsapp.net
	LIDJID   types.JID // LID@lid
}

func (a *account) public() *Account {
	return &Account{Phone: a.Phone, LID: a.LID, PushName: a.PushName, JID: a.pnJID(), LIDJID: a.lidJID()}
}

// DeviceJID is the address of one of the account's devices (0 is the phone).
func (a *Account) DeviceJID(device int) types.JID {
	return types.JID{User: a.Phone, Device: uint16(device), Server: types.DefaultUserServer}
}

// CreateAccount registers a phone number with an automatically assigned LID. Creating an existing number
// returns the existing account, so a demo can call it on every start.
func (s *Server) CreateAccount(phone, pushName string) *Account {
	acct, err := s.CreateAccountWithLID(phone, "", pushName)
	if err != nil {
		// Only an invalid number gets here; tests pass literals, so fail loudly.
		panic(err)
	}
	return acct
}

// CreateAccountWithLID registers a phone number with a chosen LID (empty picks one).
func (s *Server) CreateAccountWithLID(phone, lid, pushName string) (*Account, error) {
	if phone == "" || digitsOnly(phone) != phone {
		return nil, fmt.Errorf("wasim: phone number %q must be digits only", phone)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if existing := s.st.Accounts[phone]; existing != nil {
		return existing.public(), nil
	}
	if lid == "" {
		lid = strconv.FormatUint(s.st.NextLID, 10)
		s.st.NextLID++
	}
	if s.st.accountFor(types.NewJID(lid, types.HiddenUserServer)) != nil {
		return nil, errors.New("wasim: LID already in use")
	}
	ident := keys.NewKeyPair()
	acct := &account{Phone: phone, LID: lid, PushName: pushName, IdentityPub: ident.Pub[:], IdentityPriv: ident.Priv[:], NextDevice: 1}
	acct.ensureMaps()
	s.st.Accounts[phone] = acct
	s.log.Info().Str("phone", phone).Str("lid", lid).Msg("Created account")
	return acct.public(), nil
}

// Account looks up an account by phone number, or nil.
func (s *Server) Account(phone string) *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	if acct := s.st.Accounts[phone]; acct != nil {
		return acct.public()
	}
	return nil
}

// Devices lists the device JIDs registered for an account (0 is the phone).
func (s *Server) Devices(phone string) []types.JID {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.st.Accounts[phone]
	if acct == nil {
		return nil
	}
	var out []types.JID
	for _, id := range acct.sortedDevices() {
		out = append(out, acct.deviceJID(id, false))
	}
	return out
}

// RemoveDevice unlinks a device as if the user removed it on the phone: the client is told with
// <stream:error code=401><conflict type=device_removed/> and deletes its store.
func (s *Server) RemoveDevice(jid types.JID) error {
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.refForLocked(jid)
	if err != nil {
		return err
	}
	s.removeDeviceLocked(s.st.Accounts[ref.Phone], ref.Device, false)
	return nil
}
