package consent

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// DefaultBannerText is the Standard Mandatory DoD Notice and Consent Banner
// (DoDI 8500.01; the text DISA's STIGs require for web applications),
// verbatim. Sites that must show different wording use the "banner" option.
const DefaultBannerText = `You are accessing a U.S. Government (USG) Information System (IS) that is provided for USG-authorized use only.

By using this IS (which includes any device attached to this IS), you consent to the following conditions:

- The USG routinely intercepts and monitors communications on this IS for purposes including, but not limited to, penetration testing, COMSEC monitoring, network operations and defense, personnel misconduct (PM), law enforcement (LE), and counterintelligence (CI) investigations.
- At any time, the USG may inspect and seize data stored on this IS.
- Communications using, or data stored on, this IS are not private, are subject to routine monitoring, interception, and search, and may be disclosed or used for any USG-authorized purpose.
- This IS includes security measures (e.g., authentication and access controls) to protect USG interests--not for your personal benefit or privacy.
- Notwithstanding the above, using this IS does not constitute consent to PM, LE or CI investigative searching or monitoring of the content of privileged communications, or work product, related to personal representation or services by attorneys, psychotherapists, or clergy, and their assistants. Such communications and work product are private and confidential. See User Agreement for details.
`

// maxBannerSize bounds a custom banner file; real banners are a few KB.
const maxBannerSize = 64 << 10

// Banner is notice text split into blocks for rendering: paragraphs and
// bulleted lists. It is rendered as escaped text, never as HTML, so a banner
// file cannot inject markup into the page.
type Banner struct {
	Blocks []Block
}

// Block is either a paragraph (Text) or a bulleted list (Items).
type Block struct {
	Text  string
	Items []string
}

// DefaultBanner returns the mandated DoD banner.
func DefaultBanner() Banner {
	b, err := ParseBanner(DefaultBannerText)
	if err != nil {
		panic(err) // the constant above is known to be valid
	}
	return b
}

// LoadBanner reads a custom banner from a plain-text file: paragraphs are
// separated by blank lines, and lines starting with "-" or "*" are bullets.
func LoadBanner(path string) (Banner, error) {
	info, err := os.Stat(path)
	if err != nil {
		return Banner{}, err
	}
	if info.Size() > maxBannerSize {
		return Banner{}, fmt.Errorf("banner file %s is %d bytes; the limit is %d", path, info.Size(), maxBannerSize)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return Banner{}, err
	}
	b, err := ParseBanner(string(raw))
	if err != nil {
		return Banner{}, fmt.Errorf("banner file %s: %w", path, err)
	}
	return b, nil
}

// ParseBanner splits plain text into paragraphs and bullet lists.
func ParseBanner(text string) (Banner, error) {
	if !utf8.ValidString(text) {
		return Banner{}, errors.New("banner text is not valid UTF-8")
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var b Banner
	var para []string
	var list []string
	flushPara := func() {
		if len(para) > 0 {
			b.Blocks = append(b.Blocks, Block{Text: strings.Join(para, " ")})
			para = nil
		}
	}
	flushList := func() {
		if len(list) > 0 {
			b.Blocks = append(b.Blocks, Block{Items: list})
			list = nil
		}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			flushPara()
			flushList()
		case strings.HasPrefix(line, "-") || strings.HasPrefix(line, "*"):
			flushPara()
			list = append(list, strings.TrimSpace(line[1:]))
		case len(list) > 0:
			// a wrapped continuation of the previous bullet
			list[len(list)-1] += " " + line
		default:
			para = append(para, line)
		}
	}
	flushPara()
	flushList()
	if len(b.Blocks) == 0 {
		return Banner{}, errors.New("banner text is empty")
	}
	return b, nil
}
