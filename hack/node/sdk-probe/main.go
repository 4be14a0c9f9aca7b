// sdk-probe: an unmodified AWS SDK program, the workload of the node suite. It builds its configuration with
// aws-sdk-go-v2's default chain only (config.LoadDefaultConfig), so its credentials come from whatever the
// environment says: on the test node, the AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ENDPOINT_URL_STS the
// irsa webhook injected, and the token the kubelet wrote. It lists a bucket and prints one line per attempt:
//
//	ok bucket=B objects=N token_iat=T key=AKIA...        or        error token_iat=T err=...
//
// token_iat is the issued-at time of the token file's JWT at that moment, so a test can see the kubelet
// refresh it. Usage: sdk-probe BUCKET [EVERY_SECONDS]; with EVERY_SECONDS it loops forever, building a new
// configuration (a new AssumeRoleWithWebIdentity with the file as it is now) each round.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sdk-probe BUCKET [EVERY_SECONDS]")
		os.Exit(2)
	}
	bucket := os.Args[1]
	every := 0
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "EVERY_SECONDS must be a positive integer")
			os.Exit(2)
		}
		every = n
	}
	for {
		err := probe(bucket)
		if every == 0 {
			if err != nil {
				os.Exit(1)
			}
			return
		}
		time.Sleep(time.Duration(every) * time.Second)
	}
}

func probe(bucket string) error {
	iat := tokenIssuedAt()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Printf("error token_iat=%s err=%q\n", iat, err.Error())
		return err
	}
	// Path-style: the S3 endpoint is an IP address (MinIO on the node), which has no bucket subdomains.
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		fmt.Printf("error token_iat=%s err=%q\n", iat, err.Error())
		return err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fmt.Printf("error token_iat=%s err=%q\n", iat, err.Error())
		return err
	}
	fmt.Printf("ok bucket=%s objects=%d token_iat=%s key=%s source=%s\n", bucket, len(out.Contents), iat,
		creds.AccessKeyID, creds.Source)
	return nil
}

// tokenIssuedAt reads the iat claim of the token file, without verifying it (STS does that), or "none".
func tokenIssuedAt() string {
	path := os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE")
	if path == "" {
		return "none"
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "unreadable"
	}
	parts := strings.Split(strings.TrimSpace(string(raw)), ".")
	if len(parts) != 3 {
		return "malformed"
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "malformed"
	}
	var claims struct {
		Iat int64 `json:"iat"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return "malformed"
	}
	return strconv.FormatInt(claims.Iat, 10)
}
