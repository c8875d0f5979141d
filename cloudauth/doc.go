// Package cloudauth computes the login that IoT clouds want from a device:
// OneNET's token, Aliyun IoT Platform's signed client id and password,
// Azure IoT Hub's SAS token and user name, and the client id AWS IoT Core
// takes as the thing name. Everything is computed from a device key and a
// time the caller passes in, so tokens are made fresh at every connect and
// tests can fix the clock.
//
// It deliberately does no I/O (the caller reads the key file), keeps no
// state and imports nothing of edged: config uses it to check keys, the
// bridge to log in. It never formats a key into an error.
package cloudauth
