// Command vcsim-virtplane runs the govmomi vSphere simulator for virtplane's lab and tests.
//
// It serves the SDK over TLS with a freshly generated P-256 certificate (written to -cert-out, so
// clients verify against it), seeds every host with realistic hardware-assist facts, and prints one
// JSON line with the URL once it is ready.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	hosts := flag.Int("hosts", 3, "hosts in the cluster")
	vms := flag.Int("vms", 0, "VMs to create in the cluster")
	datastores := flag.Int("datastores", 1, "datastores")
	delay := flag.Int("delay-ms", 0, "latency added to every SOAP call, in milliseconds")
	jitter := flag.Float64("delay-jitter", 0, "latency jitter as coefficient of variation")
	certOut := flag.String("cert-out", "", "write the server certificate (PEM) here")
	user := flag.String("user", "virtplane", "login user name")
	passFile := flag.String("password-file", "", "file holding the login password")
	owner := flag.String("own-vms", "", "mark seeded VMs as owned by this stack (benchmarks)")
	flag.Parse()

	password := "virtplane"
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			log.Fatalf("reading password file: %v", err)
		}
		password = strings.TrimSpace(string(b))
	}

	model := simulator.VPX()
	model.Host = 0
	model.Cluster = 1
	model.ClusterHost = *hosts
	model.Machine = *vms
	model.Datastore = *datastores
	model.Portgroup = 1
	model.DelayConfig.Delay = *delay
	model.DelayConfig.DelayJitter = *jitter
	if err := model.Create(); err != nil {
		log.Fatalf("creating model: %v", err)
	}
	defer model.Remove()

	seedHosts()
	if *owner != "" {
		markOwned(*owner)
	}

	cert, err := selfSigned()
	if err != nil {
		log.Fatalf("certificate: %v", err)
	}
	if *certOut != "" {
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		if err := os.WriteFile(*certOut, pemBytes, 0o644); err != nil {
			log.Fatalf("writing certificate: %v", err)
		}
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, password)}
	server := model.Service.NewServer()
	defer server.Close()

	ready, _ := json.Marshal(map[string]interface{}{
		"url": "https://" + server.URL.Host + "/sdk", "host": server.URL.Host, "pid": os.Getpid(),
	})
	fmt.Println(string(ready))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

// selfSigned makes a P-256 certificate for 127.0.0.1 and localhost that can serve as its own CA.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "virtplane lab vcsim"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// seedHosts gives every host the hardware-assist facts a real ESXi host reports: capability flags,
// a GPU and an SR-IOV NIC in hardware.pciDevice, their passthrough state, and vGPU profiles.
func seedHosts() {
	for _, entity := range simulator.Map.All("HostSystem") {
		host := entity.(*simulator.HostSystem)
		host.Capability = &types.HostCapability{
			NestedHVSupported:         types.NewBool(true),
			CpuHwMmuSupported:         types.NewBool(true),
			VmDirectPathGen2Supported: types.NewBool(true),
			VmotionSupported:          true,
			MaxRunningVMs:             1024,
			MaxSupportedVcpus:         768,
		}
		gpu := types.HostPciDevice{
			Id: "0000:3b:00.0", ClassId: 0x0302, Bus: 0x3b, VendorId: 0x10de, DeviceId: 0x20b5,
			SubVendorId: 0x10de, SubDeviceId: 0x1533, VendorName: "NVIDIA Corporation",
			DeviceName: "GA100 [A100 PCIe 80GB]",
		}
		nic := types.HostPciDevice{
			Id: "0000:5e:00.0", ClassId: 0x0200, Bus: 0x5e, VendorId: -32634, DeviceId: 0x1572,
			SubVendorId: -32634, SubDeviceId: 0x0000, VendorName: "Intel Corporation",
			DeviceName: "Ethernet Controller X710 for 10GbE SFP+",
		}
		hw := *host.Hardware
		hw.PciDevice = append(append([]types.HostPciDevice{}, hw.PciDevice...), gpu, nic)
		host.Hardware = &hw
		if host.Config != nil {
			cfg := *host.Config
			cfg.PciPassthruInfo = []types.BaseHostPciPassthruInfo{
				&types.HostPciPassthruInfo{
					Id: gpu.Id, DependentDevice: gpu.Id,
					PassthruCapable: true, PassthruEnabled: true, PassthruActive: true,
				},
				&types.HostSriovInfo{
					HostPciPassthruInfo: types.HostPciPassthruInfo{
						Id: nic.Id, DependentDevice: nic.Id,
						PassthruCapable: true, PassthruEnabled: false, PassthruActive: false,
					},
					SriovEnabled: true, SriovCapable: true, SriovActive: true,
					NumVirtualFunctionRequested: 8, NumVirtualFunction: 8, MaxVirtualFunctionSupported: 64,
				},
			}
			cfg.SharedPassthruGpuTypes = []string{"grid_a100d-10c", "grid_a100d-20c", "grid_a100d-40c", "grid_a100d-80c"}
			host.Config = &cfg
		}
	}
}

// markOwned sets virtplane's ownership custom attribute on every seeded VM, naming each VM as the
// resource of the given stack, and sizes their disks in whole GiB, so a benchmark can declare them as
// they are without a create pass.
func markOwned(stack string) {
	fields := simulator.Map.CustomFieldsManager()
	fields.AddCustomFieldDef(&types.AddCustomFieldDef{Name: "virtplane.owner", MoType: "VirtualMachine"})
	var key int32
	for _, def := range fields.Field {
		if def.Name == "virtplane.owner" {
			key = def.Key
		}
	}
	for _, entity := range simulator.Map.All("VirtualMachine") {
		vm := entity.(*simulator.VirtualMachine)
		value := &types.CustomFieldStringValue{
			CustomFieldValue: types.CustomFieldValue{Key: key},
			Value:            "stack=" + stack + ";resource=" + vm.Name,
		}
		vm.CustomValue = append(vm.CustomValue, value)
		vm.Value = append(vm.Value, value)
		for _, device := range vm.Config.Hardware.Device {
			if disk, ok := device.(*types.VirtualDisk); ok {
				disk.CapacityInKB = 1024 * 1024 // whole GiB, as a declared Disk(1) reads back
				disk.CapacityInBytes = disk.CapacityInKB * 1024
			}
		}
	}
}
