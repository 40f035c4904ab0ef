package config

// GlobalNames returns every global variable, for the black-box tests that check the documentation lists them.
func GlobalNames() []string { return globalNames() }
