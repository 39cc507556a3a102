console.log("chat app");
