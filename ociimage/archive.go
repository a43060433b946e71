package ociimage

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// WriteArchive writes img to w as one tar that is both an OCI image layout
// (oci-layout, index.json, blobs/sha256/…: skopeo's and podman's
// oci-archive) and a `docker save` archive (manifest.json naming the same
// blobs: `docker load`, `crane push`), as `docker save` itself writes since
// Docker 25. ref (name:tag) names the image in both indexes. The same image
// and ref give the same bytes.
func WriteArchive(w io.Writer, img v1.Image, ref string) error {
	tag := ref[strings.LastIndex(ref, ":")+1:]
	if !strings.Contains(ref, ":") || tag == "" || strings.Contains(tag, "/") {
		return fmt.Errorf("archive: reference %q: want name:tag", ref)
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("archive: manifest: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("archive: manifest digest: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("archive: config: %w", err)
	}
	configName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("archive: config digest: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("archive: config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("archive: layers: %w", err)
	}

	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType:   types.OCIManifestSchema1,
			Size:        int64(len(manifest)),
			Digest:      digest,
			Platform:    cf.Platform(),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": tag, "io.containerd.image.name": ref},
		}},
	})
	if err != nil {
		return fmt.Errorf("archive: index: %w", err)
	}
	docker := []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: blobName(configName), RepoTags: []string{ref}}}

	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			return fmt.Errorf("archive: %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("archive: %s: %w", name, err)
		}
		return nil
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}); err != nil {
			return fmt.Errorf("archive: %s: %w", d, err)
		}
	}
	if err := put(blobName(digest), manifest); err != nil {
		return err
	}
	if err := put(blobName(configName), config); err != nil {
		return err
	}
	for _, l := range layers {
		name, err := putLayer(tw, l)
		if err != nil {
			return err
		}
		docker[0].Layers = append(docker[0].Layers, name)
	}
	dockerManifest, err := json.Marshal(docker)
	if err != nil {
		return fmt.Errorf("archive: manifest.json: %w", err)
	}
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put("index.json", index); err != nil {
		return err
	}
	if err := put("manifest.json", dockerManifest); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// putLayer writes the compressed blob of l and returns its name.
func putLayer(tw *tar.Writer, l v1.Layer) (string, error) {
	digest, err := l.Digest()
	if err != nil {
		return "", fmt.Errorf("archive: layer digest: %w", err)
	}
	size, err := l.Size()
	if err != nil {
		return "", fmt.Errorf("archive: layer %s: %w", digest, err)
	}
	name := blobName(digest)
	rc, err := l.Compressed()
	if err != nil {
		return "", fmt.Errorf("archive: layer %s: %w", digest, err)
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size}); err != nil {
		return "", fmt.Errorf("archive: %s: %w", name, err)
	}
	if _, err := io.Copy(tw, rc); err != nil {
		return "", fmt.Errorf("archive: %s: %w", name, err)
	}
	return name, nil
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
