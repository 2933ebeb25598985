# ziti-bootstrap image: a static binary on scratch, run as a non-root user. No base image is pulled.
# Build the inputs first (task image does both): CGO_ENABLED=0 go build -o dist/ziti-bootstrap ./cmd/ziti-bootstrap
# and copy the host's CA bundle to dist/ca-certificates.crt (for S3 endpoints with public certificates).
FROM scratch
COPY dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dist/ziti-bootstrap /usr/local/bin/ziti-bootstrap
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ziti-bootstrap"]
CMD ["apply"]
