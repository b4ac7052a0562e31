package tempo

// SessionRequest is the decoded `request` of a tempo/session challenge
// (protocol.md §6.2). Amounts are decimal strings; chainId is a JSON number.
type SessionRequest struct {
	// Amount is the price of one unit: the stream's tick cost.
	Amount           string        `json:"amount"`
	Currency         string        `json:"currency"`
	Recipient        string        `json:"recipient"`
	UnitType         string        `json:"unitType,omitempty"`
	SuggestedDeposit string        `json:"suggestedDeposit,omitempty"`
	MethodDetails    MethodDetails `json:"methodDetails"`
}

// MethodDetails are the session method's terms.
type MethodDetails struct {
	ChainID         uint64   `json:"chainId"`
	EscrowContract  string   `json:"escrowContract"`
	SessionProtocol Protocol `json:"sessionProtocol,omitempty"`
	MinVoucherDelta string   `json:"minVoucherDelta,omitempty"`
	ChannelID       string   `json:"channelId,omitempty"`
}

// VoucherPayload is the credential payload of a `voucher` action
// (protocol.md §6.3). Descriptor is required by v2 servers.
type VoucherPayload struct {
	Action           string      `json:"action"`
	ChannelID        string      `json:"channelId"`
	CumulativeAmount string      `json:"cumulativeAmount"`
	Signature        string      `json:"signature"`
	Descriptor       *Descriptor `json:"descriptor,omitempty"`
}

// Descriptor is the v2 channel descriptor carried by every v2 action.
type Descriptor struct {
	Payer             string `json:"payer"`
	Payee             string `json:"payee"`
	Operator          string `json:"operator"`
	Token             string `json:"token"`
	Salt              string `json:"salt"`
	AuthorizedSigner  string `json:"authorizedSigner"`
	ExpiringNonceHash string `json:"expiringNonceHash"`
}

// DescriptorOf returns the v2 descriptor of c.
func DescriptorOf(c Channel) Descriptor {
	return Descriptor{
		Payer:             c.Payer.String(),
		Payee:             c.Payee.String(),
		Operator:          c.Operator.String(),
		Token:             c.Token.String(),
		Salt:              c.Salt.String(),
		AuthorizedSigner:  c.AuthorizedSigner.String(),
		ExpiringNonceHash: c.ExpiringNonceHash.String(),
	}
}
