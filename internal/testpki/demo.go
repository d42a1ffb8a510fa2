package testpki

import "path/filepath"

// DemoP12Password protects the .p12 files of the demo PKI. It is published
// on purpose: the demo keys are committed to the repository and protect
// nothing.
const DemoP12Password = "cacgate-test"

// demoValidity keeps the committed demo PKI usable for years. Cards last
// ten years like the server, except the deliberately expired one.
var demoValidity = validity{ca: 20 * year, server: 10 * year, card: 10 * year, crl: 10 * year}

// WriteDemo generates a long-lived test PKI and writes it to dir with
// DemoP12Password, the federal cards in dir/federal (WriteFederalDemo);
// it is what produced the repository's testdata/pki.
func WriteDemo(dir string) error {
	p, err := generate(Options{}, demoValidity)
	if err != nil {
		return err
	}
	if err := p.WriteDir(dir, DemoP12Password); err != nil {
		return err
	}
	return WriteFederalDemo(filepath.Join(dir, FederalDir))
}
