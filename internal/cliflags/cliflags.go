// Package cliflags parses command lines whose options may come after positional arguments
// (`causeway import FILE.zip --chat +49...`), which the standard flag package stops at.
package cliflags

import "flag"

// Parse parses fs's flags wherever they sit among args and returns the positional
// arguments in order. Its error is fs.Parse's: flag.ErrHelp for -h, or a usage error that
// fs has already printed.
func Parse(fs *flag.FlagSet, args []string) (positional []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
