package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/edged/edged/mqttauth"
)

func cmdPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("passwd", "FILE USER", `
Add USER to the broker users file FILE, or change their password. The file
is created when missing and is written in the format of mosquitto_passwd
($7$, PBKDF2-SHA512), so either tool can manage it. The password is asked
for twice on a terminal, or read as one line from standard input:

  echo 'secret' | edged passwd /etc/edged/users alice`, stderr)
	if code := parse(fs, args, 2); code >= 0 {
		return code
	}
	file, user := fs.Arg(0), fs.Arg(1)
	if user == "" || strings.ContainsAny(user, ":\n\r") {
		fmt.Fprintf(stderr, "edged passwd: user name %q must be non-empty and contain no ':' or newline\n", user)
		return exitUsage
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "edged passwd: %v\n", err)
		return exitError
	}
	if err := mqttauth.SetPassword(file, user, pw); err != nil {
		fmt.Fprintf(stderr, "edged passwd: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: password set for %s\n", file, user)
	return exitOK
}

// readPassword prompts twice without echo on a terminal, or reads one line
// from a pipe.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	f, isFile := stdin.(*os.File)
	if isFile {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			first, err := promptNoEcho(f, stderr, "Password: ")
			if err != nil {
				return "", err
			}
			again, err := promptNoEcho(f, stderr, "Reenter password: ")
			if err != nil {
				return "", err
			}
			if first != again {
				return "", errors.New("passwords do not match")
			}
			return checkPassword(first)
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	return checkPassword(strings.TrimRight(line, "\r\n"))
}

func checkPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

func promptNoEcho(f *os.File, stderr io.Writer, prompt string) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(stderr, prompt)
	line, err := bufio.NewReader(f).ReadString('\n')
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
